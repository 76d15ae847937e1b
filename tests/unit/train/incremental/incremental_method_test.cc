// The class-incremental TrainingMethod driven by hand the way the trainer
// drives it (Setup, BeginStage, ComputeLoss/step, EndStage) on tiny synthetic
// images: the classifier grows, KD starts at stage 1, WA equalises the norms,
// the memory has the fixed budget, and SaveState/LoadState restore stage,
// memory and teacher so a requeued run resumes mid-scenario.

#include <cmath>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>
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
  // Every measured field of the finished stage comes back, not only the accuracies.
  const StageResult& a = m->results()[0];
  const StageResult& b = rm->results()[0];
  EXPECT_EQ(b.stage, a.stage);
  EXPECT_EQ(b.seen_classes, a.seen_classes);
  for (auto [got, want] : std::vector<std::pair<double, double>>{
           {b.acc, a.acc}, {b.acc_before_wa, a.acc_before_wa}, {b.old_acc, a.old_acc}, {b.new_acc, a.new_acc},
           {b.new_pred_share, a.new_pred_share}, {b.nme_acc, a.nme_acc}, {b.wa.gamma, a.wa.gamma},
           {b.wa.raw_gamma, a.wa.raw_gamma}, {b.wa.mean_old_norm_before, a.wa.mean_old_norm_before},
           {b.wa.mean_new_norm_after, a.wa.mean_new_norm_after}, {b.ce_mean, a.ce_mean},
           {b.feature_norm, a.feature_norm}, {b.dead_feature_share, a.dead_feature_share},
           {b.logit_scale, a.logit_scale}}) {
    EXPECT_DOUBLE_EQ(got, want);
  }
  EXPECT_GT(b.feature_norm, 0.0);
  EXPECT_GT(b.logit_scale, 0.0);
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

// Classes that do not divide into whole stages: 4 classes as 2 + 2 with
// classes_per_stage 3, so the last stage takes the rest (PyCIL's split).
TEST(IncrementalMethodTest, ALastStageSmallerThanClassesPerStageTakesTheRest) {
  Harness h;
  h.spec.mutable_method()->mutable_incremental()->set_classes_per_stage(3);
  h.Build();
  auto* m = dynamic_cast<IncrementalMethod*>(h.method.get());
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->NumStages(), 2);
  EXPECT_EQ(m->scenario().stage_sizes(), (std::vector<int64_t>{2, 2}));
  h.RunStage(0, 20);
  h.RunStage(1, 20);
  auto* net = dynamic_cast<IncrementalNet*>(h.model.get());
  ASSERT_NE(net, nullptr);
  EXPECT_EQ(net->fc()->out_features(), 4);
  EXPECT_EQ(m->memory().size(), 8);  // all 4 classes, 2 each
  EXPECT_EQ(m->memory().classes().size(), 4u);
  EXPECT_NEAR(h.sink.last.at("incremental/new_norm_after"), h.sink.last.at("incremental/old_norm_after"), 1e-5);
  ASSERT_TRUE(h.method->OnTrainEnd(StepInfo()).ok());
  EXPECT_EQ(h.sink.last.at("incremental/stages_completed"), 2.0);
}

// Issue 5 (γ_raw > 1 at full §7.2 size): the old/new bookkeeping, checked by
// hand on a 3-stage scenario (2 base classes, then 1 and 1) whose class order
// is NOT the identity, so swapping labels and outputs, or old and new rows,
// changes the numbers below.
struct BookkeepingHarness : Harness {
  BookkeepingHarness(bool weight_aligning, bool clamp) {
    auto* inc = spec.mutable_method()->mutable_incremental();
    inc->set_classes_per_stage(1);
    inc->set_weight_clip(false);
    inc->mutable_weight_aligning()->set_enabled(weight_aligning);
    inc->mutable_weight_aligning()->set_clamp_gamma_le_1(clamp);
  }
  IncrementalMethod* method_ptr() { return dynamic_cast<IncrementalMethod*>(method.get()); }
  IncrementalNet* net() { return dynamic_cast<IncrementalNet*>(model.get()); }
};

// Rows with L2 norms given by `norms` along the all-ones direction (so the
// logits keep their sign), [rows, D].
at::Tensor RowsWithNorms(const std::vector<double>& norms, int64_t d) {
  at::Tensor w = at::ones({int64_t(norms.size()), d}) / std::sqrt(double(d));
  for (size_t i = 0; i < norms.size(); ++i) w[int64_t(i)].mul_(norms[i]);
  return w;
}

TEST(IncrementalBookkeepingTest, LabelsMapToOutputsInClassOrder) {
  BookkeepingHarness h(/*weight_aligning=*/true, /*clamp=*/false);
  h.Build();
  IncrementalMethod* m = h.method_ptr();
  const Scenario& sc = m->scenario();
  ASSERT_EQ(sc.num_stages(), 3);
  bool identity = true;
  for (int64_t k = 0; k < 4; ++k) identity = identity && sc.LabelOf(k) == k;
  ASSERT_FALSE(identity) << "pick a class_order_seed whose order permutes the 4 classes";

  StagePlan plan;
  ASSERT_TRUE(h.method->BeginStage(0, &h.model, &plan).ok());
  // Stage 0 trains on exactly the first two classes of the ORDER.
  ASSERT_FALSE(plan.train_indices.empty());
  for (int64_t i : plan.train_indices) {
    const int64_t label = h.train.labels[i].item<int64_t>();
    EXPECT_TRUE(label == sc.LabelOf(0) || label == sc.LabelOf(1)) << "label " << label;
  }
  // ComputeLoss: CE targets are output indices, logits come back in label space.
  at::Tensor idx = at::tensor(plan.train_indices, at::kLong).narrow(0, 0, 8);
  Batch b;
  b.indices = idx;
  b.x = h.train.images.index_select(0, idx);
  b.y = h.train.labels.index_select(0, idx);
  h.model->eval();  // BN with running stats: the same forward twice
  auto out = h.method->ComputeLoss(b, StepInfo());
  ASSERT_TRUE(out.ok()) << out.status();
  at::Tensor raw = h.net()->Forward(b.x).logits.detach();
  std::vector<int64_t> targets;
  for (int64_t i = 0; i < 8; ++i) targets.push_back(sc.OutputOf(b.y[i].item<int64_t>()));
  const double ce = at::cross_entropy_loss(raw, at::tensor(targets, at::kLong)).item<double>();
  EXPECT_NEAR(out->scalars.at("incremental/ce"), ce, 1e-6);
  for (int64_t label = 0; label < 4; ++label) {
    const int64_t k = sc.OutputOf(label);
    if (k < 2) {
      EXPECT_TRUE(at::allclose(out->logits.select(1, label), raw.select(1, k))) << "label " << label;
    } else {
      EXPECT_LT(out->logits.select(1, label).max().item<double>(), -1e8) << "unseen label " << label;
    }
  }
}

TEST(IncrementalBookkeepingTest, AlignScalesOnlyTheNewRowsByTheHandComputedGammaAndTeachesTheAlignedModel) {
  BookkeepingHarness h(/*weight_aligning=*/true, /*clamp=*/false);
  h.Build();
  IncrementalMethod* m = h.method_ptr();
  h.RunStage(0, 0);
  EXPECT_EQ(m->results().back().wa.gamma, 1.0);  // nothing old at stage 0
  StagePlan plan;
  ASSERT_TRUE(h.method->BeginStage(1, &h.model, &plan).ok());
  ASSERT_EQ(h.net()->fc()->out_features(), 3);
  const int64_t d = h.net()->fc()->in_features();
  {
    torch::NoGradGuard no_grad;
    // old outputs 0, 1: norms 2 and 4 (mean 3); new output 2: norm 12 -> γ = 3/12.
    h.net()->fc()->weight.copy_(RowsWithNorms({2, 4, 12}, d));
  }
  StepInfo end;
  end.stage = 1;
  ASSERT_TRUE(h.method->EndStage(1, end).ok());
  const at::Tensor w = h.net()->fc()->weight.detach();
  EXPECT_NEAR(w[0].norm().item<double>(), 2.0, 1e-5);  // old rows untouched
  EXPECT_NEAR(w[1].norm().item<double>(), 4.0, 1e-5);
  EXPECT_NEAR(w[2].norm().item<double>(), 3.0, 1e-5);  // 12 · 0.25
  EXPECT_NEAR(h.sink.last.at("incremental/gamma"), 0.25, 1e-6);
  EXPECT_NEAR(h.sink.last.at("incremental/gamma_raw"), 0.25, 1e-6);
  EXPECT_NEAR(h.sink.last.at("incremental/old_norm_before"), 3.0, 1e-5);
  EXPECT_NEAR(h.sink.last.at("incremental/new_norm_before"), 12.0, 1e-5);
  EXPECT_NEAR(h.sink.last.at("incremental/new_norm_after"), 3.0, 1e-5);
  // The next stage's KD teacher is the ALIGNED model (§2.5 Trap 2).
  ASSERT_NE(m->teacher(), nullptr);
  EXPECT_TRUE(at::allclose(m->teacher()->fc()->weight, w));
  EXPECT_FALSE(m->teacher()->fc()->weight.requires_grad());

  // Stage 2 grows by one row: old rows kept bit for bit, the new one is
  // PyCIL's SimpleLinear init (|w| <= sqrt(3/D)).
  StagePlan plan2;
  ASSERT_TRUE(h.method->BeginStage(2, &h.model, &plan2).ok());
  const at::Tensor grown = h.net()->fc()->weight.detach();
  ASSERT_EQ(grown.size(0), 4);
  EXPECT_TRUE(at::equal(grown.narrow(0, 0, 3), w));
  EXPECT_LE(grown[3].abs().max().item<double>(), std::sqrt(3.0 / double(d)) + 1e-7);
  EXPECT_GT(grown[3].abs().max().item<double>(), 0.0);
}

TEST(IncrementalBookkeepingTest, WithoutWaGammaRawIsReportedAndNothingMoves) {
  BookkeepingHarness h(/*weight_aligning=*/false, /*clamp=*/false);
  h.Build();
  h.RunStage(0, 0);
  StagePlan plan;
  ASSERT_TRUE(h.method->BeginStage(1, &h.model, &plan).ok());
  const int64_t d = h.net()->fc()->in_features();
  {
    torch::NoGradGuard no_grad;
    h.net()->fc()->weight.copy_(RowsWithNorms({2, 4, 1.5}, d));  // new row smaller: γ_raw = 3/1.5 = 2
  }
  const at::Tensor before = h.net()->fc()->weight.detach().clone();
  StepInfo end;
  end.stage = 1;
  ASSERT_TRUE(h.method->EndStage(1, end).ok());
  EXPECT_TRUE(at::equal(h.net()->fc()->weight.detach(), before));
  EXPECT_NEAR(h.sink.last.at("incremental/gamma"), 1.0, 1e-12);
  EXPECT_NEAR(h.sink.last.at("incremental/gamma_raw"), 2.0, 1e-5);
}

TEST(IncrementalBookkeepingTest, ClampKeepsAnUpscalingGammaAtOne) {
  BookkeepingHarness h(/*weight_aligning=*/true, /*clamp=*/true);
  h.Build();
  h.RunStage(0, 0);
  StagePlan plan;
  ASSERT_TRUE(h.method->BeginStage(1, &h.model, &plan).ok());
  const int64_t d = h.net()->fc()->in_features();
  {
    torch::NoGradGuard no_grad;
    h.net()->fc()->weight.copy_(RowsWithNorms({2, 4, 1.5}, d));
  }
  StepInfo end;
  end.stage = 1;
  ASSERT_TRUE(h.method->EndStage(1, end).ok());
  EXPECT_NEAR(h.net()->fc()->weight.detach()[2].norm().item<double>(), 1.5, 1e-5);
  EXPECT_NEAR(h.sink.last.at("incremental/gamma"), 1.0, 1e-12);
  EXPECT_NEAR(h.sink.last.at("incremental/gamma_raw"), 2.0, 1e-5);
}

TEST(IncrementalBookkeepingTest, PlannedTotalStepsCountsNewClassesPlusReplayedMemory) {
  Harness h;  // 4 classes × 24 examples, stages of 2 + 2, memory 8
  h.Build();
  auto* m = dynamic_cast<IncrementalMethod*>(h.method.get());
  const int64_t b = 7, epochs = 2;
  // Stage 0: 48 examples -> 6 batches; stage 1: 48 + 8 exemplars -> 8 batches.
  EXPECT_EQ(m->PlannedTotalSteps(b, epochs), epochs * (6 + 8));
  // ... which is what the stage plans really hold (the trainer's one-stage
  // estimate, ⌊96 / 7⌋ · 2 = 26, is not).
  StagePlan p0, p1;
  ASSERT_TRUE(h.method->BeginStage(0, &h.model, &p0).ok());
  ASSERT_TRUE(h.method->EndStage(0, StepInfo()).ok());
  ASSERT_TRUE(h.method->BeginStage(1, &h.model, &p1).ok());
  EXPECT_EQ(m->PlannedTotalSteps(b, epochs),
            epochs * (int64_t(p0.train_indices.size()) / b + int64_t(p1.train_indices.size()) / b));
  EXPECT_EQ(m->PlannedTotalSteps(0, epochs), 0);
}

TEST(IncrementalBookkeepingTest, CheckpointAfterTheLastStageHoldsItsMemoryAndResumesWithoutRedoingIt) {
  Harness h;
  h.Build();
  auto* m = dynamic_cast<IncrementalMethod*>(h.method.get());
  h.RunStage(0, 5);
  h.RunStage(1, 5);  // the last stage
  ASSERT_EQ(m->completed_stages(), 2);
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    ASSERT_TRUE(h.method->SaveState(&archive).ok());
    archive.save_to(buffer);
  }
  Harness resumed;
  resumed.Build();
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  ASSERT_TRUE(resumed.method->LoadState(&in).ok());
  auto* rm = dynamic_cast<IncrementalMethod*>(resumed.method.get());
  // The final memory (2 per class over 4 classes) is in the checkpoint.
  EXPECT_EQ(rm->memory().classes(), m->memory().classes());
  EXPECT_EQ(rm->memory().size(), 8);
  ASSERT_EQ(rm->results().size(), 2u);
  StagePlan plan;
  plan.resuming = true;
  ASSERT_TRUE(resumed.method->BeginStage(1, &resumed.model, &plan).ok());
  const int before = resumed.sink.scalars_events;
  ASSERT_TRUE(resumed.method->EndStage(1, StepInfo()).ok());
  EXPECT_EQ(resumed.sink.scalars_events, before);  // nothing measured twice
  EXPECT_EQ(rm->results().size(), 2u);
  EXPECT_EQ(rm->memory().classes(), m->memory().classes());
  ASSERT_TRUE(resumed.method->OnTrainEnd(StepInfo()).ok());
  EXPECT_NEAR(resumed.sink.last.at("incremental/final_acc"), m->results()[1].acc, 1e-12);
  // Without `resuming`, a finished stage cannot begin again.
  StagePlan fresh;
  EXPECT_FALSE(resumed.method->BeginStage(1, &resumed.model, &fresh).ok());
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
