// The interaction_basis analysis run through the real Trainer: (1) on the
// block-diagonal modular MLP (§6.3 / §7.6a) the stored modules never mix the
// two blocks and Q is clearly > 0; (2) an analysis of another run's checkpoint
// (--init) leaves the weights untouched and stores the per-layer artifacts and
// the summary scalars. A few seconds.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/serialize/input-archive.h>

#include "common/sha256.h"
#include "gtest/gtest.h"
#include "proto/io/event_stream.h"
#include "tests/unit/train/read_events.h"
#include "tests/unit/train/run_trainer.h"
#include "tests/support/test_paths.h"
#include "worker/train/analysis/interaction_basis_method.h"
#include "worker/train/core/checkpoint.h"
#include "worker/train/core/trainer.h"
#include "worker/train/models/model_factory.h"

namespace pendulum::train::analysis {
namespace {

using ::pendulum::train::testing::ReadEvents;

TrainResult RunTrainer(const v1::RunSpec& spec, const std::filesystem::path& dir,
                       const std::string& init = "") {
  TrainerOptions o;
  o.spec = spec;
  o.init_path = init;
  o.threads = 1;
  return testing::RunTrainerInDir(dir, o);
}

std::map<std::string, double> AllScalars(const std::vector<v1::TrainerEvent>& events) {
  std::map<std::string, double> out;
  for (const auto& e : events) {
    if (e.has_scalars()) {
      for (const auto& [k, v] : e.scalars().values()) out[k] = v;
    }
  }
  return out;
}

nlohmann::json ReadJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

v1::RunSpec BlockMlpSpec() {
  v1::RunSpec s;
  s.set_name("ib-block");
  s.set_seed(3);
  s.mutable_model()->set_arch("block_mlp");
  for (int i = 0; i < 4; ++i) s.mutable_model()->add_hidden(8);
  auto* d = s.mutable_data();
  d->set_dataset("synthetic");
  d->mutable_synthetic()->set_num_train(4000);
  d->mutable_synthetic()->set_num_eval(16);
  d->mutable_synthetic()->set_num_classes(8);
  d->mutable_synthetic()->add_shape(8);
  // Class means are N(0, 1); noise 30 makes the inputs nearly isotropic
  // Gaussian (§6.3: Gaussian vectors), so the blocks are not coupled by the data.
  d->mutable_synthetic()->set_noise(30.0);
  auto* m = s.mutable_method()->mutable_interaction_basis();
  m->set_num_samples(4000);
  m->set_eps_d(1e-12);
  m->set_eps_lambda(1e-12);
  m->set_centre(true);
  m->set_cluster_seed(1);
  m->set_edge_eps_relative(1e-2);
  s.mutable_optimizer()->set_type("sgd");
  s.mutable_optimizer()->set_lr(0.001);
  s.mutable_schedule()->set_max_steps(1);
  s.mutable_schedule()->set_batch_size(16);
  s.mutable_resources()->set_cpus(1);
  return s;
}

TEST(InteractionBasisMethodTest, BlockDiagonalMlpRunRecoversItsTwoModules) {
  auto dir = pendulum::testing::MakeTestTempDir();
  TrainResult r = RunTrainer(BlockMlpSpec(), dir);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const std::filesystem::path art = dir / "interaction_basis";
  ASSERT_TRUE(std::filesystem::exists(art / "summary.json"));
  nlohmann::json summary = ReadJson(art / "summary.json");
  ASSERT_EQ(summary["layers"].size(), 6u);  // inputs of 5 Linear layers + the output
  const std::vector<int64_t> community = summary["modularity"]["community"].get<std::vector<int64_t>>();
  const std::vector<int64_t> offset = summary["modularity"]["layer_offset"].get<std::vector<int64_t>>();
  // Assign every interaction direction (column of C over the 8 neurons) to the
  // block holding most of its mass; a direction is "pure" above 95%.
  std::map<int64_t, std::set<int>> blocks_of_community;
  int directions = 0;
  for (size_t l = 0; l < 6; ++l) {
    torch::serialize::InputArchive a;
    a.load_from((art / ("layer" + std::to_string(l) + ".pt")).string());
    at::Tensor c;
    ASSERT_TRUE(a.try_read("C", c));
    for (int64_t k = 0; k < c.size(1); ++k) {
      at::Tensor col = c.select(1, k).slice(0, 0, 8).pow(2);
      const double total = col.sum().item<double>();
      if (total < 1e-12) continue;  // the constant (bias) direction of a centred layer
      const double first = col.slice(0, 0, 4).sum().item<double>() / total;
      if (first > 0.05 && first < 0.95) continue;  // mixed by finite-sample noise: not counted
      const int block = first >= 0.95 ? 0 : 1;
      blocks_of_community[community.at(offset.at(l) + k)].insert(block);
      ++directions;
    }
  }
  EXPECT_GT(directions, 30);
  std::set<int> seen;
  for (const auto& [comm, blocks] : blocks_of_community) {
    EXPECT_EQ(blocks.size(), 1u) << "community " << comm << " mixes the two modules";
    seen.insert(blocks.begin(), blocks.end());
  }
  EXPECT_EQ(seen.size(), 2u);
  auto events = ReadEvents(dir / "events.pb");
  auto scalars = AllScalars(events);
  EXPECT_GT(scalars.at("ib/q"), 0.3);
  EXPECT_GE(scalars.at("ib/num_modules"), 2.0);
  // The headline goes out as the Finished message (the run's exit reason in `pendulum show`).
  ASSERT_TRUE(events.back().has_finished());
  EXPECT_TRUE(events.back().finished().ok());
  EXPECT_NE(events.back().finished().message().find("modules of >1 direction"), std::string::npos)
      << events.back().finished().message();
  EXPECT_GE(scalars.at("ib/num_communities"), 2.0);
  EXPECT_DOUBLE_EQ(scalars.at("ib/q"), summary["modularity"]["q"].get<double>());
  // Every file goes out as an ArtifactSaved event (the daemon uploads it to the
  // server), with its absolute path, size and sha256, before Finished.
  std::map<std::string, v1::ArtifactSaved> saved;
  for (const auto& e : events) {
    if (e.has_artifact()) saved[e.artifact().name()] = e.artifact();
  }
  ASSERT_EQ(saved.size(), 7u) << "summary.json and layer0..5.pt";
  for (const std::string name : {"summary.json", "layer0.pt", "layer5.pt"}) {
    ASSERT_TRUE(saved.count("interaction_basis/" + name)) << name;
    const v1::ArtifactSaved& a = saved.at("interaction_basis/" + name);
    EXPECT_EQ(a.kind(), "analysis");
    EXPECT_TRUE(std::filesystem::path(a.path()).is_absolute()) << a.path();
    EXPECT_TRUE(std::filesystem::equivalent(a.path(), art / name)) << a.path();
    EXPECT_EQ(a.bytes(), static_cast<int64_t>(std::filesystem::file_size(art / name)));
    auto sha = Sha256FileHex((art / name).string());
    ASSERT_TRUE(sha.ok());
    EXPECT_EQ(a.sha256(), *sha);
  }
}

TEST(InteractionBasisMethodTest, AnalysesAnotherRunsCheckpointWithoutChangingIt) {
  // Run 1: train a small MLP.
  v1::RunSpec train;
  train.set_name("mlp");
  train.set_seed(5);
  train.mutable_model()->set_arch("mlp");
  train.mutable_model()->add_hidden(24);
  train.mutable_model()->add_hidden(12);
  auto* d = train.mutable_data();
  d->set_dataset("synthetic");
  d->mutable_synthetic()->set_num_train(512);
  d->mutable_synthetic()->set_num_eval(128);
  d->mutable_synthetic()->set_num_classes(4);
  d->mutable_synthetic()->add_shape(16);
  d->mutable_synthetic()->set_noise(1.0);
  train.mutable_optimizer()->set_type("adam");
  train.mutable_optimizer()->set_lr(0.01);
  train.mutable_schedule()->set_epochs(2);
  train.mutable_schedule()->set_batch_size(32);
  train.mutable_resources()->set_cpus(1);
  const std::filesystem::path base = pendulum::testing::MakeTestTempDir();  // one per test
  const std::filesystem::path train_dir = base / "train", dir = base / "ib";
  std::filesystem::create_directories(train_dir);
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(RunTrainer(train, train_dir).status.ok());
  std::filesystem::path ckpt;
  for (const auto& e : std::filesystem::directory_iterator(train_dir / "checkpoints")) {
    if (ckpt.empty() || e.path().string() > ckpt.string()) ckpt = e.path();
  }
  ASSERT_EQ(ckpt.filename(), "step-32.ckpt");

  // Run 2: the analysis of run 1's final checkpoint (--init), with SGD + weight
  // decay, which would move the weights if the loop's step were not undone.
  v1::RunSpec an = train;
  an.set_name("ib");
  an.mutable_optimizer()->set_type("sgd");
  an.mutable_optimizer()->set_lr(0.5);
  an.mutable_optimizer()->set_weight_decay(0.1);
  an.mutable_schedule()->set_epochs(0);
  an.mutable_schedule()->set_max_steps(2);
  auto* m = an.mutable_method()->mutable_interaction_basis();
  m->set_num_samples(300);
  m->set_eps_d(1e-12);
  m->set_eps_lambda(1e-12);
  m->set_cluster_seed(2);
  m->add_ablation_kept(1);
  m->add_ablation_kept(4);
  m->add_ablation_kept(8);
  TrainResult r = RunTrainer(an, dir, ckpt.string());
  ASSERT_TRUE(r.status.ok()) << r.status;
  auto scalars = AllScalars(ReadEvents(dir / "events.pb"));
  // Widths of the node layers (inputs of fc0, fc1, head; the output).
  EXPECT_EQ(scalars.at("ib/width/layer0"), 16);
  EXPECT_EQ(scalars.at("ib/width/layer1"), 24);
  EXPECT_EQ(scalars.at("ib/width/layer3"), 4);
  for (int l = 0; l < 3; ++l) {
    const std::string L = std::to_string(l);
    EXPECT_LE(scalars.at("ib/r_prime/layer" + L), scalars.at("ib/r/layer" + L));
    EXPECT_GE(scalars.at("ib/r_prime/layer" + L), 1);
    // Ablation curves exist for the three bases and keeping more directions of
    // the interaction basis never hurts much (monotone up to noise).
    for (const char* basis : {"interaction", "pca", "neuron"}) {
      const std::string key = std::string("ib/ablation/") + basis + "/layer" + L;
      // (k beyond a basis's kept dimension r' is left out of its curve.)
      ASSERT_TRUE(scalars.count(key + "/k1/acc") && scalars.count(key + "/k4/acc")) << key;
    }
    EXPECT_GE(scalars.at("ib/ablation/interaction/layer" + L + "/k4/acc") + 0.05,
              scalars.at("ib/ablation/interaction/layer" + L + "/k1/acc"));
  }
  EXPECT_TRUE(scalars.count("ib/edges_gini/layer0"));
  EXPECT_TRUE(scalars.count("ib/q"));
  // The analysed weights are the checkpoint's, and the run did not change them.
  torch::serialize::InputArchive a;
  a.load_from((dir / "interaction_basis" / "layer1.pt").string());
  at::Tensor c, c_pinv;
  ASSERT_TRUE(a.try_read("C", c));
  ASSERT_TRUE(a.try_read("C_pinv", c_pinv));
  // C⁺C = I on the kept subspace, as stored.
  EXPECT_LT((at::matmul(c_pinv, c) - at::eye(c.size(1), at::kDouble)).abs().max().item<double>(), 1e-6);
  std::filesystem::path last;
  for (const auto& e : std::filesystem::directory_iterator(dir / "checkpoints")) {
    if (last.empty() || e.path().string() > last.string()) last = e.path();
  }
  ASSERT_FALSE(last.empty());
  auto load = [&](const std::filesystem::path& path) -> ModelPtr {
    auto model = MakeModel(train.model(), ModelInputs{4, {16}});
    EXPECT_TRUE(model.ok());
    auto reader = CheckpointReader::Open(path.string());
    EXPECT_TRUE(reader.ok()) << reader.status();
    EXPECT_TRUE((*reader)->LoadModel(model->get(), /*strict=*/true).ok());
    return *model;
  };
  ModelPtr before = load(ckpt), after = load(last);
  auto pa = after->named_parameters();
  int compared = 0;
  for (const auto& p : before->named_parameters()) {
    EXPECT_TRUE(at::equal(p.value(), pa[p.key()])) << p.key() << " changed during the analysis run";
    ++compared;
  }
  EXPECT_EQ(compared, 6);  // fc0, fc1, head: weight + bias
}

TEST(InteractionBasisMethodTest, RejectsUnsupportedOptionsNamingTheField) {
  v1::InteractionBasisMethod m;
  m.set_integration("trapezoid");
  auto o = InteractionBasisMethod::OptionsFromSpec(m);
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("spec.method.interaction_basis.integration"), std::string::npos);
  m.set_integration("gradient");
  m.set_split("validation");
  o = InteractionBasisMethod::OptionsFromSpec(m);
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("spec.method.interaction_basis.split"), std::string::npos);
}

}  // namespace
}  // namespace pendulum::train::analysis
