#include "worker/train/incremental/weight_aligner.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <torch/utils.h>

namespace pendulum::train::incremental {

double MeanRowNorm(const at::Tensor& weight, int64_t begin, int64_t end, int norm) {
  if (end <= begin) return 0.0;
  torch::NoGradGuard no_grad;
  return weight.narrow(0, begin, end - begin).norm(norm, {1}).mean().item<double>();
}

WeightAlignResult AlignWeights(at::Tensor& weight, int64_t known_classes, const WeightAlignOptions& options) {
  torch::NoGradGuard no_grad;
  WeightAlignResult r;
  const int64_t total = weight.size(0);
  r.mean_old_norm_before = MeanRowNorm(weight, 0, known_classes, options.norm);
  r.mean_new_norm_before = MeanRowNorm(weight, std::max<int64_t>(known_classes, 0), total, options.norm);
  if (known_classes <= 0 || known_classes >= total) {
    r.mean_old_norm_after = r.mean_old_norm_before;
    r.mean_new_norm_after = r.mean_new_norm_before;
    return r;
  }
  // In the weight's dtype, as PyCIL's inc_net.weight_align computes it.
  at::Tensor old_rows = weight.narrow(0, 0, known_classes);
  at::Tensor new_rows = weight.narrow(0, known_classes, total - known_classes);
  at::Tensor gamma = old_rows.norm(options.norm, {1}).mean() / new_rows.norm(options.norm, {1}).mean();
  r.raw_gamma = gamma.item<double>();
  if (options.clamp_gamma_le_1) gamma = gamma.clamp_max(1.0);
  r.gamma = gamma.item<double>();
  new_rows.mul_(gamma);
  r.mean_old_norm_after = MeanRowNorm(weight, 0, known_classes, options.norm);
  r.mean_new_norm_after = MeanRowNorm(weight, known_classes, total, options.norm);
  return r;
}

void ClipWeightsNonNegative(at::Tensor& weight) {
  torch::NoGradGuard no_grad;
  weight.clamp_min_(0);
}

}  // namespace pendulum::train::incremental
