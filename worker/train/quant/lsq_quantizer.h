#pragma once
// LSQ (learned step size) fake quantizer, methods.md §1.1, as in the official
// OFQ code (lsq.py: LsqQuantizerWeight, LsqQuantizer, LsqQuantizer4v,
// LsqQuantizer4Conv2d, LsqQuantizer4head_input).
//
// The scale `s` is created by the first forward pass from that batch's data
// (trap 9): build the optimizer only after a dummy forward on a training batch,
// and run that forward before loading a checkpoint into a fresh module.
// Not thread-safe (torch modules are used from one training thread).

#include <functional>

#include <ATen/ATen.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/arg.h>

namespace pendulum::train::quant {

// Which entries share one scale.
enum class LsqGranularity {
  kPerTensor,   // one scale; g = 1/sqrt(Qp·numel)
  kPerOutput,   // weights: one per output row / conv output channel (dim 0);
                // g = 1/sqrt(Qp·fan_in)
  kPerToken,    // activations: one per x.size(-2) (token; (token, head) row
                // for QKR; query row of attention probabilities);
                // g = 1/sqrt(Qp·numel/size(-2)), so it depends on the batch
  kPerLastDim,  // value activations (LsqQuantizer4v): one per channel x.size(-1)
};

struct LsqQuantizerOptions {
  LsqQuantizerOptions(int bits = 2) : bits_(bits) {}
  // Bit width b, 1..16. b = 1 signed uses sign().
  TORCH_ARG(int, bits);
  // Unsigned range [0, 2^b - 1] (fc2 input after GELU, softmax output).
  TORCH_ARG(bool, all_positive) = false;
  TORCH_ARG(LsqGranularity, granularity) = LsqGranularity::kPerToken;
  // Whether s is a trainable parameter (requires_grad).
  TORCH_ARG(bool, learnable) = true;
};

// What one fake-quantization produced.
struct LsqResult {
  at::Tensor output;  // k · s, with LSQ gradients to x and s
  at::Tensor codes;   // k, detached (the integer codes of this pass)
  at::Tensor latent;  // clamp(x / s), detached (distance to thresholds)
};

// s_init = 2·mean|x| / sqrt(Qp) (4· when unsigned), the means taken in the
// order of the reference code. Returned detached, shape of the scale.
at::Tensor LsqInitScale(const at::Tensor& x, const LsqQuantizerOptions& options);

// The gradient scale g for an input of this shape.
double LsqGradScaleFactor(const at::Tensor& x, const LsqQuantizerOptions& options);

// Fake-quantizes x with scale s (shape as LsqInitScale returns). int_hook, when
// set, may replace the integer codes (with their STE graph) before the final
// multiplication, as TrackOscillation's freezing does.
LsqResult LsqFakeQuant(const at::Tensor& x, const at::Tensor& s, const LsqQuantizerOptions& options,
                       const std::function<at::Tensor(const at::Tensor&)>& int_hook = nullptr);

class LsqQuantizerImpl : public torch::nn::Cloneable<LsqQuantizerImpl> {
 public:
  explicit LsqQuantizerImpl(LsqQuantizerOptions options = {});
  void reset() override;

  // First call: creates and registers the parameter "s" from x.
  at::Tensor forward(const at::Tensor& x);

  bool initialized() const { return s_.defined(); }
  // Creates s from x without quantizing (e.g. to restore a checkpoint).
  void InitFrom(const at::Tensor& x);
  // Sets s explicitly (registers it if needed).
  void SetScale(const at::Tensor& s);
  const at::Tensor& scale() const { return s_; }
  // Codes / latent of the last training forward (undefined before). Only kept
  // when keep_codes(true): weight quantizers feed the oscillation tracker.
  const at::Tensor& last_codes() const { return last_codes_; }
  const at::Tensor& last_latent() const { return last_latent_; }
  void keep_codes(bool keep) { keep_codes_ = keep; }

  LsqQuantizerOptions options;

 private:
  at::Tensor s_;
  bool keep_codes_ = false;
  at::Tensor last_codes_;
  at::Tensor last_latent_;
};
TORCH_MODULE(LsqQuantizer);

}  // namespace pendulum::train::quant
