#pragma once
// The class-incremental TrainingMethod (spec.method.incremental; methods.md
// §2, Zhao et al. CVPR 2020 "Weight Aligning", reproduced after PyCIL).
// One run trains every stage of the scenario:
//   BeginStage t: grow the classifier to the seen classes, train on the new
//     classes' data plus the exemplar memory, rebuild the optimizer.
//   each step: (1−λ)·CE over all seen classes + λ·KD on the old logits from
//     the previous *aligned* model (λ = C_o/C, T = kd_temperature), then
//     optional weight clipping (W_fc ≥ 0) after every optimizer step.
//   EndStage t: Weight Aligning of the new rows (γ), herding memory with the
//     fixed budget (old classes shrink to their prefix), evaluation
//     (CNN and NME), stage-labelled metrics, then the aligned model becomes the
//     next stage's teacher.
// Model outputs follow the class order; logits handed to the loop are mapped
// back to dataset labels (unseen classes get −1e9), so the loop's accuracy is
// accuracy over the seen classes. Memory, teacher, stage results and the stage
// counter are saved in checkpoints, so a requeued run resumes mid-scenario.
// Training thread only.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pendulum/v1/method_incremental.pb.h"
#include "worker/train/core/training_method.h"
#include "worker/train/incremental/exemplar_memory.h"
#include "worker/train/incremental/incremental_net.h"
#include "worker/train/incremental/scenario.h"
#include "worker/train/incremental/weight_aligner.h"

namespace pendulum::train::incremental {

// Options resolved from spec.method.incremental with the defaults of §2.
struct IncrementalOptions {
  int64_t memory_size = 2000;
  bool herding = true;  // false: random exemplars
  bool kd = true;
  double temperature = 2.0;
  bool weight_aligning = false;
  WeightAlignOptions wa;
  bool weight_clip = false;
  int64_t epochs_per_stage = 0;  // 0: spec.schedule.epochs
};

// INVALID_ARGUMENT naming every bad field ("spec.method.incremental.kd_temperature: ...").
absl::StatusOr<IncrementalOptions> ResolveIncrementalOptions(const v1::IncrementalMethod& spec);

// What EndStage measured for one stage (also emitted as Scalars).
struct StageResult {
  int64_t stage = 0;
  int64_t seen_classes = 0;
  double acc = 0;            // top-1 over seen classes (after WA)
  double acc_before_wa = 0;  // same model before aligning
  double old_acc = 0, new_acc = 0;
  double new_pred_share = 0;            // share of predictions in this stage's classes (after WA)
  double new_pred_share_before_wa = 0;
  double nme_acc = 0;
  WeightAlignResult wa;  // γ and the norms (γ = 1 when WA is off or stage 0)
  double ce_mean = 0, kd_mean = 0;  // over the stage's steps
  // Backbone health on the eval data: mean ‖φ‖₂, share of feature units that
  // are 0 on every example (dead ReLUs), mean max |logit| before WA.
  double feature_norm = 0, dead_feature_share = 0, logit_scale = 0;
};

class IncrementalMethod : public TrainingMethod {
 public:
  static absl::StatusOr<std::unique_ptr<TrainingMethod>> Create(const TrainContext& ctx);

  std::string name() const override { return "incremental"; }
  absl::Status Setup(const TrainContext& ctx, ModelPtr* model) override;
  int NumStages() const override { return static_cast<int>(scenario_.num_stages()); }
  absl::Status BeginStage(int stage, ModelPtr* model, StagePlan* plan) override;
  absl::Status EndStage(int stage, const StepInfo& info) override;
  absl::StatusOr<LossOutput> ComputeLoss(const Batch& batch, const StepInfo& info) override;
  absl::Status AfterOptimizerStep(const StepInfo& info) override;
  void AddStepScalars(const StepInfo& info, std::map<std::string, double>* values) override;
  torch::Tensor EvalLogits(const torch::Tensor& x) override;
  void AddEvalScalars(const StepInfo& info, const torch::Tensor& logits, const torch::Tensor& labels,
                      std::map<std::string, double>* values) override;
  absl::Status OnTrainEnd(const StepInfo& info) override;
  absl::Status SaveState(torch::serialize::OutputArchive* archive) const override;
  absl::Status LoadState(torch::serialize::InputArchive* archive) override;

  // Steps the whole scenario takes: Σ_t epochs_t · ⌊n_t / batch_size⌋ with
  // n_t = the stage's new-class training examples + the exemplars it replays
  // (Σ_{k<C_o} min(M / C_o, n_k)); epochs_t = epochs_per_stage, else
  // default_epochs. For progress/ETA: the trainer's one-stage estimate counts
  // the whole training set per epoch (1404 instead of 1419 at §7.2 size).
  // Valid after Setup; 0 when batch_size <= 0.
  int64_t PlannedTotalSteps(int64_t batch_size, int64_t default_epochs) const override;

  // For tests: the state a checkpoint carries.
  const ExemplarMemory& memory() const { return memory_; }
  const std::vector<StageResult>& results() const { return results_; }
  int64_t completed_stages() const { return completed_stages_; }
  const Scenario& scenario() const { return scenario_; }
  // The KD teacher for the next stage (the aligned model); null before stage 0 ends.
  const std::shared_ptr<IncrementalNet>& teacher() const { return teacher_; }

 private:
  IncrementalMethod(const Scenario& scenario, const IncrementalOptions& options)
      : scenario_(scenario), options_(options), memory_(options.memory_size) {}

  absl::StatusOr<std::shared_ptr<IncrementalNet>> BuildNet(int64_t num_classes) const;
  // Features [N, D] (CPU, float) of dataset examples with eval transforms, eval mode.
  at::Tensor ExtractFeatures(IncrementalNet& net, const Dataset& data, const std::vector<int64_t>& indices) const;
  // [B, C] in output order -> [B, num_classes] in dataset-label order.
  at::Tensor ToLabelSpace(const at::Tensor& logits) const;
  absl::Status BuildMemory(int64_t stage);
  at::Tensor NmeClassMeans();  // [seen, D], rows normalised

  Scenario scenario_;
  IncrementalOptions options_;
  ExemplarMemory memory_;
  std::shared_ptr<IncrementalNet> net_;      // == model_
  std::shared_ptr<IncrementalNet> teacher_;  // aligned model of the previous stage (eval, frozen)
  int64_t completed_stages_ = 0;             // stages whose EndStage finished
  std::vector<StageResult> results_;
  int64_t stage_ = 0;
  std::vector<std::vector<int64_t>> train_by_label_, eval_by_label_;
  at::Tensor label_to_output_;  // int64 [num_classes] on the device
  at::Tensor output_to_label_;  // int64 [num_classes] on the device
  double ce_sum_ = 0, kd_sum_ = 0;
  int64_t loss_steps_ = 0;
};

}  // namespace pendulum::train::incremental
