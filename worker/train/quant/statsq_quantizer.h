#pragma once
// StatsQ weight quantizer, methods.md §1.2 (statsq.py: StatsQuantizer):
// per-output-row scale s_r = 2·mean_j|W_rj| recomputed every forward with no
// gradient, mid-rise levels s·(k + ½)/n (no zero level), identity STE that
// also passes the gradient through clipped weights (trap 1).
// Not thread-safe.

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

namespace pendulum::train::quant {

struct StatsQResult {
  at::Tensor output;   // Ŵ = STE(W → s·(k+½)/n): value Ŵ, gradient identity
  at::Tensor scale;    // s, detached, squeezed (2-D W: [rows]; 3-D: [D])
  at::Tensor latent;   // z = clip(W/s)·n − ½, detached
  at::Tensor codes;    // k = round_half_even(z), detached
};

// 2-D W [rows, in]: one scale per row. 3-D stacked W [L, D, in]: mean over the
// last axis, then over the first (one scale per D, shared across L).
// When free_mask is defined, the STE gradient is multiplied by it (QKR under
// CGA with freeze_qk = mask); otherwise the gradient is exactly the identity.
StatsQResult StatsQuantize(const at::Tensor& weight, int bits, const at::Tensor& free_mask = {});

struct StatsQuantizerOptions {
  StatsQuantizerOptions(int bits = 2) : bits_(bits) {}
  TORCH_ARG(int, bits);  // 1..16
};

// Module form; remembers the scale, latent code and codes of the last training
// forward (the codes the oscillation tracker must use, trap 8).
class StatsQuantizerImpl : public torch::nn::Cloneable<StatsQuantizerImpl> {
 public:
  explicit StatsQuantizerImpl(StatsQuantizerOptions options = {});
  void reset() override;
  at::Tensor forward(const at::Tensor& weight);
  // QKR under CGA with freeze_qk = mask: STE gradient multiplied by free_mask.
  at::Tensor ForwardMasked(const at::Tensor& weight, const at::Tensor& free_mask);

  const at::Tensor& last_scale() const { return last_scale_; }
  const at::Tensor& last_latent() const { return last_latent_; }
  const at::Tensor& last_codes() const { return last_codes_; }

  StatsQuantizerOptions options;

 private:
  at::Tensor last_scale_;
  at::Tensor last_latent_;
  at::Tensor last_codes_;
};
TORCH_MODULE(StatsQuantizer);

}  // namespace pendulum::train::quant
