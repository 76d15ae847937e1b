// OfqTrainingMethod driven through the TrainingMethod hooks in the loop's
// order (Setup → per step: ComputeLoss, backward, AfterBackward, optimizer
// step, AfterOptimizerStep), with a recording EventSink. No train_core.

#include <sstream>

#include <ATen/ATen.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include "gtest/gtest.h"
#include "worker/train/core/event_sink.h"
#include "worker/train/quant/cga.h"
#include "worker/train/models/vit.h"
#include "worker/train/quant/ofq_method.h"

namespace pendulum::train::quant {
namespace {

class RecordingSink : public EventSink {
 public:
  absl::Status EmitScalars(int64_t, double, const std::map<std::string, double>&) override {
    return absl::OkStatus();
  }
  absl::Status EmitOscillation(const v1::OscillationStats& s) override {
    stats.push_back(s);
    return absl::OkStatus();
  }
  absl::Status EmitSnapshot(const v1::WeightSnapshot& s) override {
    snapshots.push_back(s);
    return absl::OkStatus();
  }
  absl::Status EmitLog(const std::string&, const std::string&) override { return absl::OkStatus(); }
  std::vector<v1::OscillationStats> stats;
  std::vector<v1::WeightSnapshot> snapshots;
};

struct Fixture {
  v1::RunSpec spec;
  Dataset data;
  RecordingSink sink;
  TrainContext ctx;
  Fixture(const std::string& arch, bool cga) {
    spec.mutable_model()->set_arch(arch);
    if (arch == "mlp") spec.mutable_model()->add_hidden(32), spec.mutable_model()->add_hidden(32);
    auto* ofq = spec.mutable_method()->mutable_ofq();
    ofq->set_weight_quantizer("statsq");
    ofq->set_weight_bits(2);
    ofq->set_act_bits(2);
    ofq->mutable_cga()->set_enabled(cga);
    spec.mutable_schedule()->set_batch_size(16);
    spec.mutable_logging()->set_oscillation_every_steps(10);
    spec.mutable_logging()->set_snapshot_every_steps(15);
    spec.mutable_logging()->set_snapshot_top_k(4);
    at::manual_seed(0);
    data.name = "synthetic/train";
    data.images = at::randn({64, 1, 28, 28});
    data.labels = at::randint(0, 10, {64});
    data.num_classes = 10;
    data.example_shape = {1, 28, 28};
    ctx.spec = &spec;
    ctx.events = &sink;
    ctx.train_data = &data;
    ctx.eval_data = &data;
    ctx.inputs.num_classes = 10;
    ctx.inputs.example_shape = {1, 28, 28};
  }
};

ModelPtr FullPrecision(const v1::RunSpec& spec, const ModelInputs& in) {
  v1::RunSpec fp = spec;
  fp.clear_method();
  auto m = MakeOfqModel(fp.model(), in, v1::OfqMethod());  // quantized twin as a stand-in shape source
  EXPECT_TRUE(m.ok());
  return *m;
}

TEST(OfqMethodTest, QatEmitsStatsAndSnapshotsAndCreatesScalesBeforeOptimizer) {
  Fixture f("vit_tiny28", /*cga=*/false);
  auto fp = MakeViT(f.spec.model(), f.ctx.inputs, nullptr);
  ASSERT_TRUE(fp.ok());
  ModelPtr model = *fp;
  const size_t fp_params = model->parameters().size();
  OfqTrainingMethod method(f.spec.method().ofq());
  ASSERT_TRUE(method.Setup(f.ctx, &model).ok());
  EXPECT_NE(model.get(), fp->get());
  EXPECT_GT(model->parameters().size(), fp_params);  // LSQ scales exist (trap 9)
  // Weights came from the full-precision model.
  EXPECT_TRUE(model->named_parameters()["blocks.0.fc1.weight"].equal((*fp)->named_parameters()["blocks.0.fc1.weight"]));
  EXPECT_TRUE(method.ExcludeFromWeightDecay("blocks.0.fc1.act.quant.s", at::Tensor()));
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  model->train();
  for (int64_t step = 1; step <= 30; ++step) {
    StepInfo info;
    info.step = step;
    Batch b{f.data.images.narrow(0, (step % 4) * 16, 16), f.data.labels.narrow(0, (step % 4) * 16, 16), {}};
    opt.zero_grad();
    auto loss = method.ComputeLoss(b, info);
    ASSERT_TRUE(loss.ok());
    loss->loss.backward();
    ASSERT_TRUE(method.AfterBackward(info).ok());
    opt.step();
    ASSERT_TRUE(method.AfterOptimizerStep(info).ok());
  }
  EXPECT_EQ(f.sink.stats.size(), 3u);  // steps 10, 20, 30
  const size_t layers = method.monitor()->layer_names().size();
  EXPECT_EQ(f.sink.snapshots.size(), 2 * layers);  // steps 15, 30
  EXPECT_EQ(f.sink.snapshots.back().top_size(), 4);
  std::map<std::string, double> scalars;
  method.AddStepScalars(StepInfo{}, &scalars);
  EXPECT_TRUE(scalars.count("ofq/osc_ratio"));
  // The §7.1 comparison scalars cover the 2-bit block weights only (the 8-bit
  // patch embedding and head are LSQ in every configuration).
  ASSERT_TRUE(scalars.count("ofq/osc_ratio_wq"));
  ASSERT_TRUE(scalars.count("ofq/flip_rate_wq"));
  std::map<std::string, int64_t> numel;
  for (const auto& snap : f.sink.snapshots) {
    int64_t n = 1;
    for (int64_t d : snap.shape()) n *= d;
    numel[snap.layer()] = n;
  }
  double above = 0, total = 0;
  int low_bit_layers = 0, high_bit_layers = 0;
  for (const auto& l : f.sink.stats.back().layers()) {
    if (l.layer() == "model") continue;
    if (l.values().at("bits") != 2) {
      ++high_bit_layers;
      continue;
    }
    ++low_bit_layers;
    above += l.values().at("osc_ratio_0.005") * double(numel.at(l.layer()));
    total += double(numel.at(l.layer()));
  }
  EXPECT_GT(low_bit_layers, 0);
  EXPECT_GT(high_bit_layers, 0);  // patch embedding and head are tracked but left out
  EXPECT_NEAR(scalars["ofq/osc_ratio_wq"], above / total, 1e-9);
  EXPECT_GT(scalars["ofq/flip_rate_wq"], 0.0);  // 30 AdamW steps at 2 bits flip some codes
  EXPECT_LT(scalars["ofq/flip_rate_wq"], 0.5);
  std::map<std::string, double> again;
  method.AddStepScalars(StepInfo{}, &again);
  EXPECT_FALSE(again.count("ofq/flip_rate_wq"));  // the window was reset: no step since

  // Tracker state survives a checkpoint round trip.
  torch::serialize::OutputArchive out;
  ASSERT_TRUE(method.SaveState(&out).ok());
  std::ostringstream buf;
  out.save_to(buf);
  OfqTrainingMethod restored(f.spec.method().ofq());
  ModelPtr model2 = *MakeViT(f.spec.model(), f.ctx.inputs, nullptr);
  ASSERT_TRUE(restored.Setup(f.ctx, &model2).ok());
  torch::serialize::InputArchive in;
  std::istringstream ibuf(buf.str());
  in.load_from(ibuf);
  ASSERT_TRUE(restored.LoadState(&in).ok());
  EXPECT_DOUBLE_EQ(restored.monitor()->OscillationRatio(0.005), method.monitor()->OscillationRatio(0.005));
  EXPECT_EQ(restored.monitor()->tracked_weights(), method.monitor()->tracked_weights());
}

TEST(OfqMethodTest, CgaKeepsFrozenWeightsExactlyAcrossAdamWSteps) {
  Fixture f("mlp", /*cga=*/true);
  ModelPtr model = FullPrecision(f.spec, f.ctx.inputs);
  OfqTrainingMethod method(f.spec.method().ofq());
  ASSERT_TRUE(method.Setup(f.ctx, &model).ok());
  ASSERT_NE(method.cga(), nullptr);
  at::Tensor w = model->named_parameters()["fc1.weight"];  // the 2-bit StatsQ layer
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0.5));
  model->train();
  for (int64_t step = 1; step <= 5; ++step) {
    StepInfo info;
    info.step = step;
    Batch b{f.data.images.narrow(0, 0, 16), f.data.labels.narrow(0, 0, 16), {}};
    at::Tensor before = w.detach().clone();
    at::Tensor frozen = CgaFreezeMask(before, 2, 0.005).to(at::kBool);
    opt.zero_grad();
    method.ComputeLoss(b, info)->loss.backward();
    ASSERT_TRUE(method.AfterBackward(info).ok());
    opt.step();
    ASSERT_TRUE(method.AfterOptimizerStep(info).ok());
    EXPECT_TRUE(w.detach().masked_select(frozen).equal(before.masked_select(frozen)));
    EXPECT_LT(method.cga()->free_fraction(), 0.1);
  }
}

TEST(OfqMethodTest, BadSpecIsAnErrorNamingTheField) {
  Fixture f("vit_tiny28", false);
  f.spec.mutable_method()->mutable_ofq()->set_weight_quantizer("dorefa");
  ModelPtr model = *MakeViT(f.spec.model(), f.ctx.inputs, nullptr);
  OfqTrainingMethod method(f.spec.method().ofq());
  absl::Status s = method.Setup(f.ctx, &model);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("spec.method.ofq.weight_quantizer"), std::string::npos);
  Fixture g("resnet32", false);
  OfqTrainingMethod m2(g.spec.method().ofq());
  ModelPtr dummy = *MakeViT(f.spec.model(), f.ctx.inputs, nullptr);
  absl::Status s2 = m2.Setup(g.ctx, &dummy);
  EXPECT_NE(std::string(s2.message()).find("resnet32"), std::string::npos);
}

}  // namespace
}  // namespace pendulum::train::quant
