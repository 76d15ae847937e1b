#include "worker/train/quant/ste_ops.h"

namespace pendulum::train::quant {

// Speed (issue 4): the parts that the reference detaches are computed from
// detached inputs, so autograd records no nodes that would be thrown away,
// and in place where a fresh temporary is not needed. Every value is the
// same float operation on the same operands as the reference expression.

at::Tensor RoundPass(const at::Tensor& x) {
  const at::Tensor xd = x.detach();
  return xd.round().sub_(xd) + x;
}

at::Tensor GradScale(const at::Tensor& x, double g) {
  at::Tensor y_grad = x * g;
  return (x.detach() - y_grad.detach()) + y_grad;
}

at::Tensor ClipFloorSte(const at::Tensor& x, double eps) {
  const at::Tensor xd = x.detach();
  // where(x > eps, x, eps), not clamp_min: it keeps lsq.py's NaN behaviour.
  at::Tensor clipped = at::where(xd > eps, xd, at::Scalar(eps));
  return x - xd + clipped;
}

IntRange LsqIntRange(int bits, bool all_positive) {
  if (all_positive) return bits == 1 ? IntRange{0, 1} : IntRange{0, (int64_t{1} << bits) - 1};
  if (bits == 1) return IntRange{-1, 1};
  return IntRange{-(int64_t{1} << (bits - 1)), (int64_t{1} << (bits - 1)) - 1};
}

}  // namespace pendulum::train::quant
