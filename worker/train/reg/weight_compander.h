#pragma once
// WeightCompander: reparameterises every Linear/Conv2d weight of a model as
// w = f(v) (methods.md §4). The model's registered "weight" parameter becomes
// the latent v (so the optimizer, weight decay and checkpoints see v, §4.1 and
// trap 4.4.3); forward() sees f(v) after Materialize(). Biases and norms are
// untouched. Export() writes f(v) back into the parameters for inference (trap
// 4.4.1). Results are "WC-like (family X)" until the §4 GAP is closed.
// Owned by the training method; not thread-safe (training thread only).
//
//   auto wc = WeightCompander::Attach(*model, options);   // v = f⁻¹(w_init)
//   for (...) { (*wc)->Materialize(); loss = model->forward(x) ...; opt.step(); }
//   (*wc)->Export();

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "absl/status/statusor.h"
#include "worker/train/reg/compander_function.h"
#include "worker/train/reg/reparam_layer.h"

namespace pendulum::train::reg {

struct WeightCompanderOptions {
  CompanderFamily family = CompanderFamily::kTanh;
  // Absolute A for every layer; unset: A = a_std_multiplier · std(w_init) per layer.
  std::optional<double> a;
  double a_std_multiplier = 3.0;
  // β (tanh: slope at 0; mu_law: μ; power: exponent p in (0,1)).
  // Unset: 2 for tanh and mu_law, 0.5 for power.
  std::optional<double> beta;
  // Learn (A, β) per layer through log A, log β (no weight decay on them).
  bool learnable = false;
  double power_eps = 1e-6;
};

// Per-layer effective-weight statistics (§4.3 and trap 4.4.2).
struct CompanderLayerStats {
  std::string layer;
  double a = 0, beta = 0;
  double max_abs_w = 0;
  double std_w = 0;
  double kurtosis = 0;        // E[(w-μ)^4]/σ^4 (3 for a Gaussian)
  double near_zero_frac = 0;  // |w| < 1e-3·σ
  double saturated_frac = 0;  // f'(v) < 0.1
};

class WeightCompander {
 public:
  // True for the parameter names of log A / log β ("fc0.compander_log_a").
  static bool IsHyperParameterName(const std::string& name);

  // Rewrites every Linear/Conv2d weight of `model` to v = f⁻¹(w). INVALID_ARGUMENT
  // for bad options or a model without such layers. `model` must outlive this.
  static absl::StatusOr<std::unique_ptr<WeightCompander>> Attach(
      torch::nn::Module& model, const WeightCompanderOptions& options);

  // Recomputes f(v) into the members forward() uses. Call before each forward.
  void Materialize();
  // The learnable log A and log β tensors (empty when not learnable). They are
  // registered on each layer as "compander_log_a"/"compander_log_beta"
  // (parameters when learnable, buffers otherwise), so model->parameters()
  // includes them: keep them out of weight decay (IsHyperParameterName).
  std::vector<at::Tensor> hyper_parameters() const;
  // Writes f(v) into the weight parameters and detaches; the model is then a
  // plain model again. Idempotent.
  void Export();
  std::vector<CompanderLayerStats> Stats() const;
  const std::vector<ReparamLayer>& layers() const { return layers_; }
  at::Tensor a(size_t i) const;
  at::Tensor beta(size_t i) const;
  const WeightCompanderOptions& options() const { return options_; }

 private:
  WeightCompander(std::vector<ReparamLayer> layers, WeightCompanderOptions options);

  std::vector<ReparamLayer> layers_;
  WeightCompanderOptions options_;
  CompanderFunction fn_;
  std::vector<at::Tensor> log_a_, log_beta_;  // per layer, 0-dim
  bool exported_ = false;
};

}  // namespace pendulum::train::reg
