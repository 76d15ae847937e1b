#pragma once
// OfqTrainingMethod: the OFQ TrainingMethod (spec.method.ofq, methods.md §1).
// Setup swaps the full-precision model for its quantized twin (ViT family or
// mlp), copies the full-precision weights into it by name (QKR splits qkv and
// drops the q/k biases), loads spec.init.checkpoint_path into the quantized
// model when it holds quantizer state (the CGA run continuing from QAT), and
// runs a dummy forward on training examples so that every LSQ scale exists
// before the loop builds the optimizer (trap 9). Per step: CGA gradient
// masking after backward and write-back after the optimizer step (§1.4), then
// the oscillation tracker on the codes of the trained forward (trap 8);
// OscillationStats every logging.oscillation_every_steps, WeightSnapshots
// every snapshot_every_steps and at the end. Tracker state is checkpointed.
// Step scalars: ofq/osc_ratio (all tracked weights, tau 0.005), and over the
// block weights at spec weight_bits only (the comparison of methods.md §7.1;
// the 8-bit first layer and heads are LSQ in every configuration):
// ofq/osc_ratio_wq and ofq/flip_rate_wq (mean over the metrics window);
// ofq/cga_free_frac during CGA.
// Training thread only. Registered as method "ofq".

#include <functional>
#include <memory>
#include <string>

#include "worker/train/core/training_method.h"
#include "worker/train/quant/cga.h"
#include "worker/train/quant/oscillation_monitor.h"

namespace pendulum::train::quant {

class OfqTrainingMethod : public TrainingMethod {
 public:
  // Loads a checkpoint file into the quantized model (non-strict); the
  // registration (ofq_method_registration.cc) passes one built on
  // CheckpointReader. Null: spec.init.checkpoint_path is not reloaded.
  using InitLoader = std::function<absl::Status(const std::string& path, Model* model)>;

  explicit OfqTrainingMethod(const v1::OfqMethod& spec, InitLoader init_loader = nullptr)
      : spec_(spec), init_loader_(std::move(init_loader)) {}

  std::string name() const override { return "ofq"; }
  absl::Status Setup(const TrainContext& ctx, ModelPtr* model) override;
  bool ExcludeFromWeightDecay(const std::string& param_name, const torch::Tensor& p) const override;
  absl::Status AfterBackward(const StepInfo& info) override;
  absl::Status AfterOptimizerStep(const StepInfo& info) override;
  void AddStepScalars(const StepInfo& info, std::map<std::string, double>* values) override;
  absl::Status OnTrainEnd(const StepInfo& info) override;
  absl::Status SaveState(torch::serialize::OutputArchive* archive) const override;
  absl::Status LoadState(torch::serialize::InputArchive* archive) override;

  const OscillationMonitor* monitor() const { return monitor_.get(); }
  const ConfidenceGuidedAnnealing* cga() const { return cga_.get(); }

 private:
  absl::Status EmitSnapshots(int64_t step);

  v1::OfqMethod spec_;
  InitLoader init_loader_;
  std::unique_ptr<OscillationMonitor> monitor_;
  std::unique_ptr<ConfidenceGuidedAnnealing> cga_;
  int64_t oscillation_every_ = 50;
  int64_t snapshot_every_ = 1000;
  int top_k_ = 32;
  int64_t last_snapshot_step_ = -1;
  int weight_bits_ = 2;  // bits of the block weights (spec weight_bits)
  // Flip rate of the weight_bits_ layers, summed over the metrics window.
  double window_flips_ = 0;
  int64_t window_steps_ = 0;
};

// Builds the quantized twin of the spec's model (vit family or mlp) without
// weights copied; exposed for tests and benchmarks.
absl::StatusOr<ModelPtr> MakeOfqModel(const v1::ModelSpec& model, const ModelInputs& inputs,
                                      const v1::OfqMethod& ofq);

}  // namespace pendulum::train::quant
