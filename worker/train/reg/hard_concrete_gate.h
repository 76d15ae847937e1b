#pragma once
// HardConcreteGate: Louizos et al. (2018) hard-concrete L0 gates, one per output
// channel (methods.md §5.1): parameters log α_g, temperature β = 2/3 and
// stretch (γ, ζ) = (−0.1, 1.1). Training samples z; evaluation uses the
// deterministic gate clip(σ(log α)(ζ−γ)+γ, 0, 1). ClampLogAlpha() after every
// optimizer step keeps log α in [ln 0.01, ln 100] (trap 5.6.1).
// A torch module (owns log_alpha); training thread only.

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

namespace pendulum::train::reg {

struct HardConcreteGateOptions {
  int64_t channels = 1;
  double temperature = 2.0 / 3.0;  // β
  double gamma = -0.1;
  double zeta = 1.1;
  double droprate_init = 0.3;  // log α init = ln(1−d) − ln d (+ N(0, 0.01²))
  double log_alpha_min = -4.605170185988091;  // ln 0.01
  double log_alpha_max = 4.605170185988091;   // ln 100
};

class HardConcreteGateImpl : public torch::nn::Cloneable<HardConcreteGateImpl> {
 public:
  explicit HardConcreteGateImpl(HardConcreteGateOptions options = {});
  void reset() override;

  // Per-channel gate: a sample when is_training(), the deterministic gate otherwise.
  at::Tensor forward();
  at::Tensor Sample() const;
  at::Tensor Deterministic() const;
  // q0_g = P(z_g = 0) = σ(β·log(−γ/ζ) − log α_g), clamped to [1e−6, 1 − 1e−6].
  at::Tensor ProbZero() const;
  // Σ_g (1 − q0_g)·group_size.
  at::Tensor ExpectedL0(int64_t group_size) const;
  void ClampLogAlpha();

  HardConcreteGateOptions options;
  at::Tensor log_alpha;
};
TORCH_MODULE(HardConcreteGate);

}  // namespace pendulum::train::reg
