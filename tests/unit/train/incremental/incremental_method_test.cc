// The class-incremental TrainingMethod driven by hand the way the trainer
// drives it (Setup, BeginStage, ComputeLoss/step, EndStage) on tiny synthetic
// images: the classifier grows, KD starts at stage 1, WA equalises the norms,
// the memory has the fixed budget, and SaveState/LoadState restore stage,
// memory and teacher so a requeued run resumes mid-scenario.

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "gtest/gtest.h"
#include "worker/train/core/event_sink.h"
#include "worker/train/incremental/incremental_method.h"
#include "worker/train/models/model_factory.h"

namespace pendulum::train::incremental {
namespace {

class RecordingSink : public EventSink {
 public:
  absl::Status EmitScalars(int64_t step, double epoch, const std::map<std::string, double>& values) override {
    for (const auto& [k, v] : values) last[k] = v;
    ++scalars_events;
    return absl::OkStatus();
  }
  absl::Status EmitOscillation(const v1::OscillationStats&) override { return absl::OkStatus(); }
  absl::Status EmitSnapshot(const v1::WeightSnapshot&) override { return absl::OkStatus(); }
  absl::Status EmitLog(const std::string&, const std::string&) override { return absl::OkStatus(); }
  std::map<std::string, double> last;
  int scalars_events = 0;
};

// 4 classes of 8x8 single-channel blobs, separable by where the bright square is.
Dataset MakeData(int64_t per_class, uint64_t seed) {
  at::manual_seed(seed);
  Dataset d;
  d.name = "synthetic";
  d.num_classes = 4;
  d.example_shape = {1, 8, 8};
  d.images = at::randn({4 * per_class, 1, 8, 8}) * 0.3;
  d.labels = at::arange(4 * per_class, at::kLong).remainder(4);
  for (int64_t i = 0; i < 4 * per_class; ++i) {
    const int64_t c = i % 4;
    d.images[i][0].narrow(0, (c / 2) * 4, 4).narrow(1, (c % 2) * 4, 4).add_(1.5);
  }
  return d;
}

v1::RunSpec MakeSpec() {
  v1::RunSpec spec;
  spec.mutable_model()->set_arch("cnn_small");
  spec.mutable_model()->set_fc_bias(false);
  auto* inc = spec.mutable_method()->mutable_incremental();
  inc->set_base_classes(2);
  inc->set_classes_per_stage(2);
  inc->set_memory_size(8);
  inc->mutable_weight_aligning()->set_enabled(true);
  inc->set_weight_clip(true);
  spec.set_seed(3);
  return spec;
}

struct Harness {
  v1::RunSpec spec = MakeSpec();
  Dataset train = MakeData(24, 1);
  Dataset eval = MakeData(8, 2);
  RecordingSink sink;
  TrainContext ctx;
  ModelPtr model;
  std::unique_ptr<TrainingMethod> method;

  void Build() {
    ctx.spec = &spec;
    ctx.events = &sink;
    ctx.train_data = &train;
    ctx.eval_data = &eval;
    ctx.inputs.num_classes = 4;
    ctx.inputs.example_shape = {1, 8, 8};
    at::manual_seed(0);
    auto m = MakeModel(spec.model(), ctx.inputs);
    ASSERT_TRUE(m.ok()) << m.status();
    model = *m;
    auto made = IncrementalMethod::Create(ctx);
    ASSERT_TRUE(made.ok()) << made.status();
    method = std::move(*made);
    ASSERT_TRUE(method->Setup(ctx, &model).ok());
  }

  // One stage, a few SGD steps over the plan's examples.
  void RunStage(int stage, int steps) {
    StagePlan plan;
    ASSERT_TRUE(method->BeginStage(stage, &model, &plan).ok());
    torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    at::Tensor idx = at::tensor(plan.train_indices, at::kLong);
    for (int s = 0; s < steps; ++s) {
      Batch b;
      b.indices = idx.index_select(0, at::randperm(idx.size(0)).narrow(0, 0, std::min<int64_t>(16, idx.size(0))));
      b.x = train.images.index_select(0, b.indices);
      b.y = train.labels.index_select(0, b.indices);
      StepInfo info;
      info.stage = stage;
      info.step = s + 1;
      model->train();
      auto out = method->ComputeLoss(b, info);
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ(out->scalars.count("incremental/kd"), stage > 0 ? 1u : 0u);
      opt.zero_grad();
      out->loss.backward();
      opt.step();
      ASSERT_TRUE(method->AfterOptimizerStep(info).ok());
    }
    StepInfo end;
    end.stage = stage;
    end.step = steps;
    ASSERT_TRUE(method->EndStage(stage, end).ok());
  }
};

TEST(IncrementalMethodTest, TwoStagesThenResumeFromSavedState) {
  Harness h;
  h.Build();
  auto* m = dynamic_cast<IncrementalMethod*>(h.method.get());
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->NumStages(), 2);
  auto* net = dynamic_cast<IncrementalNet*>(h.model.get());
  ASSERT_NE(net, nullptr);
  EXPECT_EQ(net->fc()->out_features(), 2);

  h.RunStage(0, 20);
  EXPECT_EQ(m->completed_stages(), 1);
  EXPECT_EQ(m->memory().size(), 8);  // 8 / 2 classes = 4 each
  for (const auto& [cls, idx] : m->memory().classes()) {
    EXPECT_EQ(idx.size(), 4u);
    for (int64_t i : idx) EXPECT_EQ(m->scenario().OutputOf(h.train.labels[i].item<int64_t>()), cls);
  }
  EXPECT_GT(h.sink.last.at("incremental/acc"), 0.6);  // two easy classes

  // Checkpoint taken between the stages.
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    ASSERT_TRUE(h.method->SaveState(&archive).ok());
    archive.save_to(buffer);
  }

  h.RunStage(1, 20);
  EXPECT_EQ(net->fc()->out_features(), 4);
  EXPECT_EQ(m->memory().size(), 8);  // 2 per class now: old classes shrank
  for (const auto& [cls, idx] : m->memory().classes()) EXPECT_EQ(idx.size(), 2u);
  EXPECT_GE(net->fc()->weight.min().item<double>(), 0.0);  // clipped after every step
  // WA: the mean L2 norms of old and new rows agree after aligning.
  EXPECT_NEAR(h.sink.last.at("incremental/new_norm_after"), h.sink.last.at("incremental/old_norm_after"), 1e-5);
  EXPECT_TRUE(h.sink.last.count("incremental/old_acc"));
  EXPECT_TRUE(h.sink.last.count("incremental/nme_acc"));
  ASSERT_TRUE(h.method->OnTrainEnd(StepInfo()).ok());
  EXPECT_NEAR(h.sink.last.at("incremental/avg_inc_acc"),
              (m->results()[0].acc + m->results()[1].acc) / 2, 1e-12);

  // A requeued run: fresh method + model, state from the checkpoint.
  Harness resumed;
  resumed.Build();
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  ASSERT_TRUE(resumed.method->LoadState(&in).ok());
  auto* rm = dynamic_cast<IncrementalMethod*>(resumed.method.get());
  EXPECT_EQ(rm->completed_stages(), 1);
  ASSERT_EQ(rm->results().size(), 1u);
  EXPECT_DOUBLE_EQ(rm->results()[0].acc, m->results()[0].acc);
  StagePlan plan;
  plan.resuming = true;
  ASSERT_TRUE(resumed.method->BeginStage(1, &resumed.model, &plan).ok());  // teacher restored, fc grown
  EXPECT_EQ(dynamic_cast<IncrementalNet*>(resumed.model.get())->fc()->out_features(), 4);
  EXPECT_TRUE(plan.rebuild_optimizer);
  // Stage 1 trains on its new classes plus the 8 stage-0 exemplars.
  EXPECT_EQ(plan.train_indices.size(), 2u * 24u + 8u);
  // Starting stage 1 twice, or stage 2 before stage 1 ends, is refused.
  StagePlan again;
  EXPECT_FALSE(resumed.method->BeginStage(0, &resumed.model, &again).ok());
}

TEST(IncrementalMethodTest, BadSpecNamesTheField) {
  Harness h;
  h.spec.mutable_method()->mutable_incremental()->set_kd_temperature(-1);
  h.spec.mutable_method()->mutable_incremental()->mutable_weight_aligning()->set_norm(3);
  h.ctx.spec = &h.spec;
  h.ctx.inputs.num_classes = 4;
  auto made = IncrementalMethod::Create(h.ctx);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("spec.method.incremental.kd_temperature"), std::string::npos);
  EXPECT_NE(made.status().message().find("spec.method.incremental.weight_aligning.norm"), std::string::npos);
}

}  // namespace
}  // namespace pendulum::train::incremental
