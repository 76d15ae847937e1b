#pragma once
// HYDRA-style score pruning (methods.md §5.3). Each prunable weight w gets a
// score s initialised to sqrt(6/fan_in)·w/max|w|; the forward uses
// w ⊙ 1[|s| in the top-k fraction of its layer] with a straight-through
// gradient to s (∂(w⊙m)/∂s = w). `kept_fraction` is the KEPT share (0.1 = 90%
// pruned, trap 5.6.3); each layer keeps exactly max(1, round(k·numel)) weights.
// Pure functions of tensors.

#include <ATen/ATen.h>

namespace pendulum::train::reg {

at::Tensor InitHydraScores(const at::Tensor& weight);
// The hard 0/1 mask (no grad) keeping the top max(1, round(k·numel)) |s|.
at::Tensor HydraMask(const at::Tensor& scores, double kept_fraction);
// mask + (s − s.detach()): value = mask, gradient = identity to s.
at::Tensor HydraMaskSte(const at::Tensor& scores, double kept_fraction);
int64_t HydraKeptCount(int64_t numel, double kept_fraction);

}  // namespace pendulum::train::reg
