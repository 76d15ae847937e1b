#include "worker/train/reg/hard_concrete_gate.h"

#include <cmath>

#include <torch/utils.h>

namespace pendulum::train::reg {

HardConcreteGateImpl::HardConcreteGateImpl(HardConcreteGateOptions options_in)
    : options(options_in) {
  reset();
}

void HardConcreteGateImpl::reset() {
  const double d = options.droprate_init;
  const double mean = std::log(1 - d) - std::log(d);
  log_alpha = register_parameter("log_alpha", at::randn({options.channels}) * 1e-2 + mean);
}

at::Tensor HardConcreteGateImpl::ProbZero() const {
  const double shift = options.temperature * std::log(-options.gamma / options.zeta);
  return at::sigmoid(shift - log_alpha).clamp(1e-6, 1 - 1e-6);
}

at::Tensor HardConcreteGateImpl::ExpectedL0(int64_t group_size) const {
  return (1 - ProbZero()).sum() * static_cast<double>(group_size);
}

at::Tensor HardConcreteGateImpl::Sample() const {
  const double eps = 1e-6;
  at::Tensor u = at::rand_like(log_alpha).clamp(eps, 1 - eps);
  at::Tensor s = at::sigmoid((at::log(u) - at::log(1 - u) + log_alpha) / options.temperature);
  return (s * (options.zeta - options.gamma) + options.gamma).clamp(0.0, 1.0);
}

at::Tensor HardConcreteGateImpl::Deterministic() const {
  return (at::sigmoid(log_alpha) * (options.zeta - options.gamma) + options.gamma).clamp(0.0, 1.0);
}

at::Tensor HardConcreteGateImpl::forward() { return is_training() ? Sample() : Deterministic(); }

void HardConcreteGateImpl::ClampLogAlpha() {
  torch::NoGradGuard no_grad;
  log_alpha.clamp_(options.log_alpha_min, options.log_alpha_max);
}

}  // namespace pendulum::train::reg
