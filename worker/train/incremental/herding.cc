#include "worker/train/incremental/herding.h"

#include <algorithm>
#include <limits>

#include <ATen/ATen.h>
#include <torch/utils.h>

namespace pendulum::train::incremental {

namespace {
constexpr double kEpsilon = 1e-8;  // PyCIL's EPSILON
}

at::Tensor NormalizeFeatures(const at::Tensor& features) {
  return features / (features.norm(2, {1}, /*keepdim=*/true) + kEpsilon);
}

std::vector<int64_t> HerdingSelect(const at::Tensor& features, int64_t m) {
  torch::NoGradGuard no_grad;
  const int64_t n = features.size(0);
  const int64_t count = std::clamp<int64_t>(m, 0, n);
  std::vector<int64_t> picked;
  picked.reserve(static_cast<size_t>(count));
  if (count == 0) return picked;

  at::Tensor vectors = NormalizeFeatures(features.detach());
  at::Tensor class_mean = vectors.mean(0);
  // PyCIL deletes picked rows; masking them with +inf keeps the original
  // order, so argmin's first-minimum tie-break is the same.
  at::Tensor taken = at::zeros({n}, at::TensorOptions().dtype(at::kBool));
  // PyCIL's distance ‖μ − (v_i + S)/k‖ expanded as ‖μ − S/k‖² − (2/k)·v_i·(μ − S/k)
  // + ‖v_i‖²/k²: one mat-vec per pick instead of an n×d temporary (with conv
  // features of a few thousand dimensions that took minutes per class). The
  // first term is the same for every i, and sqrt is monotone, so the argmin
  // is PyCIL's up to rounding; float64 keeps the expansion's cancellation
  // error far below the gaps between real candidates.
  const at::Tensor v64 = vectors.to(at::kDouble);
  const at::Tensor mean64 = class_mean.to(at::kDouble);
  const at::Tensor sq_norms = v64.pow(2).sum(1);
  at::Tensor sum64 = at::zeros_like(mean64);
  for (int64_t k = 1; k <= count; ++k) {
    const double kd = static_cast<double>(k);
    const at::Tensor residual = mean64 - sum64 / kd;
    at::Tensor score = sq_norms / (kd * kd) - at::mv(v64, residual) * (2.0 / kd);
    score.masked_fill_(taken, std::numeric_limits<double>::infinity());
    const int64_t i = score.argmin().item<int64_t>();
    picked.push_back(i);
    taken[i] = true;
    sum64 += v64[i];
  }
  return picked;
}

}  // namespace pendulum::train::incremental
