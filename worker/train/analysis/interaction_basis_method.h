#pragma once
// InteractionBasisMethod: the analysis run type spec.method.interaction_basis
// (methods.md §6). It analyses the model as loaded from init (--init /
// init.from_run / init.checkpoint_path; without init, the architecture's own
// initialisation, which is what the block_mlp check uses) on the first
// num_samples examples of the chosen split, in Setup: the interaction basis
// per node layer, edges, modules (seeded Louvain) and ablation curves for the
// interaction, PCA and neuron bases. Results: scalars at the end of the run
// ("ib/..."), and artifacts in <out_dir>/interaction_basis/ (summary.json with
// spectra, r, r', Λ, clusters, Q, edge sparsity and curves; layer<l>.pt with
// C, C⁺, U, D, V, Λ and E), and a one-line summary as the run's Finished
// message (ResultSummary; `pendulum show`). With centre, the constant (bias)
// direction of each layer is left out of the module graph. The loop's training steps are no-ops: the loss is
// 0 and the weights are restored after every optimizer step. Only MLPs of
// Linear + ReLU (mlp, block_mlp) are supported. Training thread only.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "worker/train/analysis/interaction_basis.h"
#include "worker/train/analysis/modularity.h"
#include "worker/train/core/training_method.h"

namespace pendulum::train::analysis {

struct InteractionBasisRunOptions {
  InteractionBasisOptions basis;
  ModularityOptions modularity;
  int64_t num_samples = 10000;
  bool use_eval_split = false;
  std::vector<int64_t> ablation_kept;  // empty = 1, 2, 4, ...
};

class InteractionBasisMethod : public TrainingMethod {
 public:
  explicit InteractionBasisMethod(InteractionBasisRunOptions o) : o_(std::move(o)) {}
  static absl::StatusOr<InteractionBasisRunOptions> OptionsFromSpec(const v1::InteractionBasisMethod& m);

  std::string name() const override { return "interaction_basis"; }
  absl::Status Setup(const TrainContext& ctx, ModelPtr* model) override;
  absl::StatusOr<LossOutput> ComputeLoss(const Batch& batch, const StepInfo& info) override;
  absl::Status AfterOptimizerStep(const StepInfo& info) override;
  absl::Status OnTrainEnd(const StepInfo& info) override;
  // "interaction basis: Q 0.52, 2 modules (sizes 20, 19); r'/width per node layer 8/9 ...;
  //  artifacts in DIR" (shown by `pendulum show` as the exit reason).
  std::string ResultSummary() const override { return summary_text_; }

  const std::map<std::string, double>& summary() const { return scalars_; }

 private:
  absl::Status Analyse(torch::nn::Module& model, const at::Tensor& x, const at::Tensor& y);

  InteractionBasisRunOptions o_;
  std::map<std::string, double> scalars_;
  std::string summary_text_;
  // Files written to the out dir (artifact name, path), emitted as
  // ArtifactSaved events at the end so the daemon uploads them to the server.
  std::vector<std::pair<std::string, std::string>> artifacts_;
  std::vector<at::Tensor> frozen_values_;  // parameters as analysed, restored after each step
};

}  // namespace pendulum::train::analysis
