#pragma once
// Activation fake quantizer of the OFQ models (qlinear.py: LSQ_input): a
// learnable per-channel shift before (move_b4) and after (move_aft) an LSQ
// quantizer, both initialised to 0 (methods.md §1.1). bits = 0 is the
// identity (full-precision activations, no parameters). Not thread-safe.

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include "worker/train/quant/lsq_quantizer.h"

namespace pendulum::train::quant {

struct QuantActOptions {
  QuantActOptions(int64_t channels, int bits) : channels_(channels), bits_(bits) {}
  // Size of the last dimension (the shifts are per channel).
  TORCH_ARG(int64_t, channels);
  // 0 = no quantization; else 1..16.
  TORCH_ARG(int, bits);
  TORCH_ARG(bool, all_positive) = false;
  TORCH_ARG(LsqGranularity, granularity) = LsqGranularity::kPerToken;
  // Learnable shifts around the quantizer (off for attention probabilities).
  TORCH_ARG(bool, shifts) = true;
};

class QuantActImpl : public torch::nn::Cloneable<QuantActImpl> {
 public:
  explicit QuantActImpl(QuantActOptions options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);

  QuantActOptions options;
  LsqQuantizer quant{nullptr};
  at::Tensor move_b4;
  at::Tensor move_aft;
};
TORCH_MODULE(QuantAct);

}  // namespace pendulum::train::quant
