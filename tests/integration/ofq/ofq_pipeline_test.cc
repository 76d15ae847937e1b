// Integration: the OFQ pipeline of methods.md §1 / §7.1 end to end on real
// Fashion-MNIST, through a real pendulum-server (own SQLite file, loopback),
// pendulum-worker and pendulum-train. Three runs from the example specs in
// examples/ofq/ (shortened by overrides): full-precision MLP pretraining →
// 2-bit StatsQ QAT initialised from it (the server resolves init.from_run,
// the worker fetches the checkpoint and passes --init) → CGA continued from
// the QAT run. Then the oscillation statistics must be in SQLite and
// QueryOscillation (gRPC) and `pendulum oscillation` (CLI) must name the
// layer with the most oscillating weights and its top weights.
// Budget: about 30-60 s on a loaded 2-core machine (MLP 784-256-256-10,
// 8k-image subset (62 steps per epoch), 120 + 200 + 60 steps, one torch
// thread per run).
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "tests/integration/worker/worker_fixture.h"

namespace pendulum::cluster {
namespace {

using ::testing::HasSubstr;

constexpr char kFashionDir[] = "/usr/share/datasets/fashion-mnist";

std::string ExampleSpec(const std::string& name) {
  return ReadFile(testing::SourceDir() / "examples" / "ofq" / name);
}

// Overrides that shorten an example to test size without changing its method.
std::vector<std::string> Short(int64_t max_steps, std::vector<std::string> extra = {}) {
  std::vector<std::string> o = {"data.train_subset=8000", "data.eval_subset=2000", "resources.cpus=1",
                                absl::StrCat("schedule.max_steps=", max_steps)};
  o.insert(o.end(), extra.begin(), extra.end());
  return o;
}

class OfqPipelineTest : public WorkerClusterTest {
 protected:
  // Submits and waits for SUCCEEDED; returns the run id (0 on failure).
  int64_t RunToSuccess(const std::string& spec, const std::vector<std::string>& overrides) {
    auto id = client_->Submit(spec, overrides);
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return 0;
    auto run = client_->WaitFor(*id, [](const v1::Run& r) { return IsTerminal(r.state()); }, absl::Seconds(240));
    EXPECT_TRUE(run.ok()) << run.status();
    if (!run.ok()) return 0;
    EXPECT_EQ(run->state(), v1::SUCCEEDED) << "run " << *id << ": " << run->exit_reason();
    return run->state() == v1::SUCCEEDED ? *id : 0;
  }

  // Values of one metric of a run, in step order, straight from SQLite.
  std::vector<double> Metric(int64_t run_id, const std::string& name) {
    Db db(config_.db);
    std::vector<double> out;
    for (const std::string& row :
         db.Query(absl::StrCat("SELECT m.value FROM metrics m JOIN metric_names n ON n.id = m.name_id WHERE m.run_id=",
                               run_id, " AND n.name='", name, "' AND m.superseded=0 ORDER BY m.step"))) {
      out.push_back(std::atof(row.c_str()));
    }
    return out;
  }

  absl::StatusOr<v1::QueryOscillationResponse> QueryOscillation(int64_t run_id, const std::string& layer) {
    v1::QueryOscillationRequest request;
    request.set_run_id(run_id);
    request.set_layer(layer);
    request.set_include_snapshot(true);
    v1::QueryOscillationResponse response;
    auto ctx = client_->Context();
    grpc::Status s = client_->stub()->QueryOscillation(ctx.get(), request, &response);
    if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    return response;
  }
};

TEST_F(OfqPipelineTest, FpThenQatThenCgaOnFashionMnistStoresAndAnswersOscillation) {
  RequireTrainer();
  if (!fs::exists(fs::path(kFashionDir) / "train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist not installed (" << kFashionDir << ")";
  }
  ASSERT_NE(StartWorker("w1"), nullptr);

  // 1. Full-precision pretraining.
  const int64_t fp = RunToSuccess(ExampleSpec("mlp_fp_pretrain.yaml"), Short(120));
  ASSERT_GT(fp, 0) << Logs();
  const std::vector<double> fp_acc = Metric(fp, "eval_acc");
  ASSERT_FALSE(fp_acc.empty());
  EXPECT_GT(fp_acc.back(), 0.75) << "full-precision MLP did not learn Fashion-MNIST";
  const std::vector<double> fp_loss = Metric(fp, "loss");
  ASSERT_FALSE(fp_loss.empty());

  // 2. 2-bit StatsQ QAT initialised from the FP run (server resolves from_run,
  //    the worker passes --init). Oscillations counted from step 50.
  const int64_t qat = RunToSuccess(
      ExampleSpec("mlp_qat_statsq.yaml"),
      Short(200, {absl::StrCat("init.from_run=", fp), "method.ofq.oscillation.start_step=50",
                  "logging.oscillation_every_steps=10", "logging.snapshot_every_steps=100",
                  "logging.metrics_every_steps=10"}));
  ASSERT_GT(qat, 0) << Logs();
  // Initialised from the FP weights: the first QAT window starts far below a
  // fresh network's ~2.3 nats, near where the FP run ended.
  const std::vector<double> qat_loss = Metric(qat, "loss");
  ASSERT_FALSE(qat_loss.empty());
  EXPECT_LT(qat_loss.front(), 1.2) << "QAT did not start from the FP checkpoint (FP ended at " << fp_loss.back()
                                   << ")";
  const std::vector<double> qat_acc = Metric(qat, "eval_acc");
  ASSERT_FALSE(qat_acc.empty());
  EXPECT_GT(qat_acc.back(), 0.7) << "2-bit StatsQ QAT collapsed";

  // SQLite holds per-layer statistics and per-weight snapshots of the QAT run.
  Db db(config_.db);
  EXPECT_GT(db.Count(absl::StrCat("SELECT COUNT(*) FROM layer_oscillation WHERE run_id=", qat)), 100);
  EXPECT_GT(db.Count(absl::StrCat("SELECT COUNT(*) FROM weight_snapshots WHERE run_id=", qat)), 0);

  // QueryOscillation (gRPC): series for every quantized layer plus the model
  // aggregate; a snapshot per layer with its most oscillating weights.
  auto all = QueryOscillation(qat, "");
  ASSERT_TRUE(all.ok()) << all.status();
  std::map<std::string, const v1::LayerOscillationPoint*> latest;
  for (const auto& pt : all->series()) {
    auto& slot = latest[pt.layer()];
    if (slot == nullptr || pt.step() >= slot->step()) slot = &pt;
  }
  for (const char* layer : {"fc0", "fc1", "head", "model"}) {
    ASSERT_TRUE(latest.count(layer)) << "no oscillation series for layer " << layer;
  }
  EXPECT_EQ(latest["model"]->step(), 200);
  std::map<std::string, int64_t> numel;
  for (const auto& snap : all->snapshots()) {
    int64_t n = 1;
    for (int64_t d : snap.shape()) n *= d;
    numel[snap.layer()] = n;
  }
  ASSERT_TRUE(numel.count("fc1")) << "no weight snapshot for fc1";
  // The layer with the most oscillating weights (count = ratio × size at
  // tau 0.005), computed from the answered statistics.
  std::string worst;
  double worst_count = -1;
  for (const auto& [layer, pt] : latest) {
    if (layer == "model" || !numel.count(layer)) continue;
    const double count = pt->values().at("osc_ratio_0.005") * double(numel[layer]);
    if (count > worst_count) {
      worst_count = count;
      worst = layer;
    }
  }
  ASSERT_FALSE(worst.empty());
  EXPECT_GT(worst_count, 0) << "2-bit QAT with no oscillating weight at all is implausible";
  std::cerr << "layer with most oscillating weights: " << worst << " (" << worst_count << " weights)\n";

  // The same question asked for that layer only: its snapshot's top weights
  // are sorted, inside the tensor, and oscillate.
  auto one = QueryOscillation(qat, worst);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->snapshots_size(), 1);
  const v1::WeightSnapshot& snap = one->snapshots(0);
  EXPECT_EQ(snap.layer(), worst);
  ASSERT_GT(snap.top_size(), 0);
  EXPECT_GT(snap.top(0).frequency(), 0.005);
  EXPECT_GT(snap.top(0).count(), 0);
  for (int i = 1; i < snap.top_size(); ++i) EXPECT_LE(snap.top(i).frequency(), snap.top(i - 1).frequency());
  for (const auto& w : snap.top()) {
    EXPECT_GE(w.index(), 0);
    EXPECT_LT(w.index(), numel[worst]);
    ASSERT_EQ(w.coords_size(), snap.shape_size());
  }
  for (const auto& pt : one->series()) EXPECT_EQ(pt.layer(), worst);

  // The CLI answers the same: its table names the layer and the top weight.
  const fs::path cli = BuildDir() / "client" / "pendulum";
  if (fs::exists(cli)) {
    auto out = RunAndCapture({cli.string(), "--server", server_->address(), "--token", user_token_, "oscillation",
                              std::to_string(qat), "--layer", worst, "--top", "3"},
                             dir_);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_THAT(*out, HasSubstr(worst + " @ step"));
    EXPECT_THAT(*out, HasSubstr("oscillating weights"));
    EXPECT_THAT(*out, HasSubstr("[" + absl::StrJoin(snap.top(0).coords(), ",") + "]"));
  } else {
    std::cerr << "note: " << cli << " not built; CLI check skipped\n";
  }

  // 3. CGA continued from the QAT run: few weights are free and the codes
  //    (almost) stop flipping; accuracy holds.
  const int64_t cga = RunToSuccess(ExampleSpec("mlp_cga.yaml"),
                                   Short(60, {absl::StrCat("init.from_run=", qat), "logging.oscillation_every_steps=10",
                                              "logging.metrics_every_steps=10"}));
  ASSERT_GT(cga, 0) << Logs();
  const std::vector<double> free_frac = Metric(cga, "ofq/cga_free_frac");
  ASSERT_FALSE(free_frac.empty()) << "CGA run reported no ofq/cga_free_frac";
  EXPECT_LT(free_frac.back(), 0.05);
  auto cga_osc = QueryOscillation(cga, "fc1");
  ASSERT_TRUE(cga_osc.ok()) << cga_osc.status();
  double cga_flips = 0, qat_flips = 0;
  int n_cga = 0, n_qat = 0;
  for (const auto& pt : cga_osc->series()) {
    cga_flips += pt.values().at("flip_rate");
    ++n_cga;
  }
  for (const auto& pt : all->series()) {
    if (pt.layer() != "fc1" || pt.step() < 100) continue;
    qat_flips += pt.values().at("flip_rate");
    ++n_qat;
  }
  ASSERT_GT(n_cga, 0);
  ASSERT_GT(n_qat, 0);
  std::cerr << "fc1 flip rate: QAT " << qat_flips / n_qat << ", CGA " << cga_flips / n_cga << "\n";
  EXPECT_LT(cga_flips / n_cga, 0.1 * qat_flips / n_qat + 1e-6) << "CGA did not drive flips to near zero";
  const std::vector<double> cga_acc = Metric(cga, "eval_acc");
  ASSERT_FALSE(cga_acc.empty());
  EXPECT_GT(cga_acc.back(), qat_acc.back() - 0.02) << "CGA lost accuracy";
}

}  // namespace
}  // namespace pendulum::cluster
