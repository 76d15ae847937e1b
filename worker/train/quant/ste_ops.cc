#include "worker/train/quant/ste_ops.h"

namespace pendulum::train::quant {

at::Tensor RoundPass(const at::Tensor& x) {
  return (x.round() - x).detach() + x;
}

at::Tensor GradScale(const at::Tensor& x, double g) {
  at::Tensor y_grad = x * g;
  return (x - y_grad).detach() + y_grad;
}

at::Tensor ClipFloorSte(const at::Tensor& x, double eps) {
  at::Tensor floor = at::full({}, eps, x.options());
  at::Tensor clipped = at::where(x > floor, x, floor);
  return x - x.detach() + clipped.detach();
}

IntRange LsqIntRange(int bits, bool all_positive) {
  if (all_positive) return bits == 1 ? IntRange{0, 1} : IntRange{0, (int64_t{1} << bits) - 1};
  if (bits == 1) return IntRange{-1, 1};
  return IntRange{-(int64_t{1} << (bits - 1)), (int64_t{1} << (bits - 1)) - 1};
}

}  // namespace pendulum::train::quant
