#pragma once
// Straight-through building blocks shared by the OFQ quantizers (methods.md §1).
// They reproduce the expressions of the official code (lsq.py / statsq.py)
// operation by operation, so that values and gradients match the reference
// vectors bit-for-bit up to float rounding. Pure functions; any thread.

#include <ATen/ATen.h>

namespace pendulum::train::quant {

// float32(1e-5) promoted to double: the scale floor of lsq.py's clip().
inline constexpr double kLsqScaleFloor = 9.999999747378752e-06;
// float32(0.999999) promoted to double: StatsQ's upper clip (clip_val/2 - 1e-6
// computed on a float32 tensor).
inline constexpr double kStatsQUpperClip = 0.9999989867210388;

// round(x) forward, identity backward: (round(x) - x).detach() + x.
at::Tensor RoundPass(const at::Tensor& x);

// Value x, gradient g * dL/dx: (x - x*g).detach() + x*g.
at::Tensor GradScale(const at::Tensor& x, double g);

// Value max(x, eps) (torch.where(x > eps, x, eps)), gradient the identity.
at::Tensor ClipFloorSte(const at::Tensor& x, double eps = kLsqScaleFloor);

// LSQ integer range: signed [-2^(b-1), 2^(b-1)-1], unsigned [0, 2^b-1];
// b = 1: signed {-1, 1} (sign), unsigned {0, 1}.
struct IntRange {
  int64_t neg;
  int64_t pos;
};
IntRange LsqIntRange(int bits, bool all_positive);

}  // namespace pendulum::train::quant
