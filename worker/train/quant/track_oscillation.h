#pragma once
// Nagel et al.'s oscillation tracker with optional iterative weight freezing,
// as shipped (but not called) in the OFQ code (lsq.py: TrackOscillation, used
// by LsqQuantizerWeight_iterative_freezing). Kept float-tensor based to match
// the reference exactly; the compact per-weight tracker Pendulum runs every
// step is OscillationTracker. Training thread only.

#include <cstdint>

#include <ATen/ATen.h>

namespace pendulum::train::quant {

struct TrackOscillationOptions {
  double momentum = 0.01;
  // > 0: weights whose EMA oscillation exceeds it are frozen to round(ema_x_int).
  double freeze_threshold = 0.0;
  bool use_ema_x_int = true;
};

class TrackOscillation {
 public:
  explicit TrackOscillation(TrackOscillationOptions options = {});

  // x_int: the integer codes with their STE graph. Frozen entries are replaced
  // by frozen_x_int (so they get no gradient). With skip_tracking (eval) only
  // the replacement happens. The first tracked call only initialises state.
  at::Tensor operator()(const at::Tensor& x_int, bool skip_tracking = false);

  const at::Tensor& prev_switch_dir() const { return prev_switch_dir_; }
  const at::Tensor& ema_oscillation() const { return ema_oscillation_; }
  const at::Tensor& total_oscillation() const { return total_oscillation_; }
  const at::Tensor& frozen() const { return frozen_; }
  const at::Tensor& frozen_x_int() const { return frozen_x_int_; }
  const at::Tensor& ema_x_int() const { return ema_x_int_; }
  double oscillated_sum() const { return oscillated_sum_; }
  int64_t iters_since_reset() const { return iters_since_reset_; }

 private:
  TrackOscillationOptions options_;
  at::Tensor prev_x_int_;
  at::Tensor prev_switch_dir_;
  at::Tensor ema_oscillation_;
  at::Tensor total_oscillation_;
  at::Tensor frozen_;
  at::Tensor frozen_x_int_;
  at::Tensor ema_x_int_;
  double oscillated_sum_ = 0;
  int64_t iters_since_reset_ = 0;
};

}  // namespace pendulum::train::quant
