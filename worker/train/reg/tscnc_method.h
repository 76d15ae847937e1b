#pragma once
// TscncMethod: the TrainingMethod for spec.method.tscnc (methods.md §5).
// phase = all runs pretrain → prune → fine-tune as three stages of one run
// (a fresh optimizer each stage); a single phase runs one stage, so the three
// can also be a pipeline of runs linked by init.from_run. Each step: optional
// adversarial example (PGD crafted in eval mode), TRADES or CE loss, + R + L_cn;
// after the step log α is clamped and the pole guard checked (a trip fails the
// run). Each evaluation adds §5.4 metrics and FGSM/PGD robust accuracy on the
// first robust_eval_examples evaluation examples.
// Not implemented: the parameter EMA of the code (prune starts from the current
// weights, not EMA weights) and APGD/AutoAttack/FAB/Square/CW evaluation.
// Training thread only.

#include <memory>
#include <string>

#include "worker/train/core/training_method.h"
#include "worker/train/reg/adversarial_attack.h"
#include "worker/train/reg/tscnc.h"

namespace pendulum::train::reg {

struct TscncRunOptions {
  TscncOptions tscnc;
  bool all_phases = true;
  TscncPhase single_phase = TscncPhase::kPretrain;
  int64_t phase_epochs[3] = {0, 1, 1};  // 0 = schedule.epochs
  bool adversarial = false;
  bool trades = true;
  double trades_beta = 6.0;
  PgdOptions train_attack;               // pixel units; converted in Setup
  int eval_pgd_steps = 20;
  double eval_pgd_step_size = 2.0 / 255.0;
  int64_t robust_eval_examples = 1000;
};

class TscncMethod : public TrainingMethod {
 public:
  explicit TscncMethod(TscncRunOptions options) : o_(std::move(options)) {}
  // Everything but the layer defaults and N, which need the model and data.
  static absl::StatusOr<TscncRunOptions> OptionsFromSpec(const v1::TscncMethod& spec);
  // Default gate / CN layers for an architecture (see method_reg.proto).
  static void DefaultLayers(const std::string& arch, torch::nn::Module& model,
                            std::vector<std::string>* gate_layers, std::vector<std::string>* cn_layers);

  std::string name() const override { return "tscnc"; }
  absl::Status Setup(const TrainContext& ctx, ModelPtr* model) override;
  bool Frozen(const std::string& name, const torch::Tensor& p) const override;
  bool ExcludeFromWeightDecay(const std::string& name, const torch::Tensor& p) const override;
  int NumStages() const override { return o_.all_phases ? 3 : 1; }
  absl::Status BeginStage(int stage, ModelPtr* model, StagePlan* plan) override;
  absl::StatusOr<LossOutput> ComputeLoss(const Batch& batch, const StepInfo& info) override;
  absl::Status AfterOptimizerStep(const StepInfo& info) override;
  torch::Tensor EvalLogits(const torch::Tensor& x) override;
  void AddEvalScalars(const StepInfo& info, const torch::Tensor& logits, const torch::Tensor& labels,
                      std::map<std::string, double>* values) override;

  // The last evaluation's headline: clean/FGSM/PGD accuracy, sparsity, κ per layer.
  std::string ResultSummary() const override { return summary_; }

  Tscnc* tscnc() { return tscnc_.get(); }

 private:
  PgdOptions ToInputUnits(PgdOptions pixel) const;

  TscncRunOptions o_;
  std::unique_ptr<Tscnc> tscnc_;
  double input_scale_ = 1.0;  // 1/std of the loader's normalisation (1 for float data)
  double clip_min_ = 0.0, clip_max_ = 1.0;
  std::string summary_;
};

}  // namespace pendulum::train::reg
