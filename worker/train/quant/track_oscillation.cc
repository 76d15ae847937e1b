#include "worker/train/quant/track_oscillation.h"

#include <c10/util/Exception.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)

namespace pendulum::train::quant {

TrackOscillation::TrackOscillation(TrackOscillationOptions options) : options_(options) {}

at::Tensor TrackOscillation::operator()(const at::Tensor& x_int_in, bool skip_tracking) {
  at::Tensor x_int = x_int_in;
  if (frozen_.defined()) {
    at::Tensor fz = frozen_.to(x_int.scalar_type());
    x_int = frozen_.logical_not().to(x_int.scalar_type()) * x_int + fz * frozen_x_int_;
  }
  if (skip_tracking) return x_int;

  at::NoGradGuard no_grad;
  at::Tensor xi = x_int.detach();
  if (!prev_x_int_.defined()) {
    prev_switch_dir_ = at::zeros_like(xi);
    prev_x_int_ = xi.clone();
    ema_oscillation_ = at::zeros_like(xi);
    total_oscillation_ = at::zeros_like(xi);
    oscillated_sum_ = 0;
  } else {
    TORCH_CHECK(prev_x_int_.sizes() == xi.sizes(), "Tracking shape does not match current tensor shape.");
  }
  if (!frozen_.defined() && options_.freeze_threshold > 0) {
    frozen_ = at::zeros(xi.sizes(), xi.options().dtype(at::kBool));
    frozen_x_int_ = at::zeros_like(xi);
    if (options_.use_ema_x_int) ema_x_int_ = xi.clone();
  }

  at::Tensor delta = (prev_x_int_ - xi).round();
  at::Tensor switch_dir = delta.sign();
  at::Tensor switched = delta.ne(0);
  at::Tensor oscillated = (prev_switch_dir_ * switch_dir).eq(-1);
  const double m = options_.momentum;
  ema_oscillation_ = oscillated.to(xi.scalar_type()) * m + ema_oscillation_ * (1 - m);
  prev_switch_dir_ = at::where(switched, switch_dir, prev_switch_dir_);
  prev_x_int_ = xi.clone();
  oscillated_sum_ = oscillated.sum().item<double>();
  total_oscillation_ = total_oscillation_ + oscillated.to(xi.scalar_type());
  ++iters_since_reset_;

  if (options_.freeze_threshold > 0) {
    at::Tensor freeze = ema_oscillation_.gt(options_.freeze_threshold);
    frozen_.logical_or_(freeze);
    if (options_.use_ema_x_int) {
      frozen_x_int_ = at::where(freeze, ema_x_int_.round(), frozen_x_int_);
      ema_x_int_ = xi * m + ema_x_int_ * (1 - m);
    } else {
      frozen_x_int_ = at::where(freeze, xi, frozen_x_int_);
    }
  }
  return x_int;
}

}  // namespace pendulum::train::quant
