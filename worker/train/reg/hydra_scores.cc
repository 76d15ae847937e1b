#include "worker/train/reg/hydra_scores.h"

#include <algorithm>
#include <cmath>

#include <torch/utils.h>

namespace pendulum::train::reg {

at::Tensor InitHydraScores(const at::Tensor& weight) {
  torch::NoGradGuard no_grad;
  const double fan_in = static_cast<double>(weight.numel() / weight.size(0));
  const double max_abs = std::max(weight.abs().max().item<double>(), 1e-12);
  return weight.detach() * (std::sqrt(6.0 / fan_in) / max_abs);
}

int64_t HydraKeptCount(int64_t numel, double kept_fraction) {
  const auto k = static_cast<int64_t>(std::llround(kept_fraction * static_cast<double>(numel)));
  return std::clamp<int64_t>(k, 1, numel);
}

at::Tensor HydraMask(const at::Tensor& scores, double kept_fraction) {
  torch::NoGradGuard no_grad;
  at::Tensor flat = scores.detach().abs().flatten();
  const int64_t k = HydraKeptCount(flat.numel(), kept_fraction);
  at::Tensor mask = at::zeros_like(flat);
  // topk picks exactly k indices, also when scores tie.
  mask.index_fill_(0, std::get<1>(at::topk(flat, k)), 1.0);
  return mask.view_as(scores);
}

at::Tensor HydraMaskSte(const at::Tensor& scores, double kept_fraction) {
  return HydraMask(scores, kept_fraction) + (scores - scores.detach());
}

}  // namespace pendulum::train::reg
