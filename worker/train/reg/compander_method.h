#pragma once
// CompanderMethod: the TrainingMethod for spec.method.compander (methods.md §4).
// Attaches a WeightCompander to the model in Setup, materialises f(v) before
// every forward, keeps log A/log β out of weight decay, emits the §4.3 metrics
// (effective-weight statistics per layer at each evaluation, A/β on metric
// steps), and at the end exports f(v) to <out_dir>/model_export.pt (trap
// 4.4.1; the run's checkpoints hold v so they stay resumable), announced as
// the named artifact compander/model_export.pt (kind "model"). Results are
// "WC-like (family X)" (§4 GAP). Training thread only.

#include <memory>
#include <string>

#include "worker/train/core/training_method.h"
#include "worker/train/reg/weight_compander.h"

namespace pendulum::train::reg {

class CompanderMethod : public TrainingMethod {
 public:
  explicit CompanderMethod(WeightCompanderOptions options) : options_(std::move(options)) {}
  // INVALID_ARGUMENT naming spec.method.compander.* fields.
  static absl::StatusOr<WeightCompanderOptions> OptionsFromSpec(const v1::CompanderMethod& spec);

  std::string name() const override { return "compander"; }
  absl::Status Setup(const TrainContext& ctx, ModelPtr* model) override;
  bool ExcludeFromWeightDecay(const std::string& name, const torch::Tensor& p) const override;
  absl::StatusOr<LossOutput> ComputeLoss(const Batch& batch, const StepInfo& info) override;
  torch::Tensor EvalLogits(const torch::Tensor& x) override;
  void AddStepScalars(const StepInfo& info, std::map<std::string, double>* values) override;
  void AddEvalScalars(const StepInfo& info, const torch::Tensor& logits, const torch::Tensor& labels,
                      std::map<std::string, double>* values) override;
  absl::Status OnTrainEnd(const StepInfo& info) override;

  // "WC-like (family tanh, learnable): eval acc ..., max |w| ..., near-zero ..., f' < 0.1 ...".
  std::string ResultSummary() const override { return summary_; }

  WeightCompander* compander() { return compander_.get(); }

 private:
  WeightCompanderOptions options_;
  std::unique_ptr<WeightCompander> compander_;
  std::string summary_;
};

}  // namespace pendulum::train::reg
