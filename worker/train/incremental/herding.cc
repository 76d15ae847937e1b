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
  at::Tensor selected_sum = at::zeros_like(class_mean);
  // PyCIL deletes picked rows; masking them with +inf keeps the original
  // order, so argmin's first-minimum tie-break is the same.
  at::Tensor taken = at::zeros({n}, at::TensorOptions().dtype(at::kBool));
  for (int64_t k = 1; k <= count; ++k) {
    at::Tensor mu_p = (vectors + selected_sum) / static_cast<double>(k);
    at::Tensor dist = (class_mean - mu_p).pow(2).sum(1).sqrt();
    dist.masked_fill_(taken, std::numeric_limits<double>::infinity());
    const int64_t i = dist.argmin().item<int64_t>();
    picked.push_back(i);
    taken[i] = true;
    selected_sum += vectors[i];
  }
  return picked;
}

}  // namespace pendulum::train::incremental
