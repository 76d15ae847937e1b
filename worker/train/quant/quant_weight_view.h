#pragma once
// What a quantized layer exposes about its weight after a training forward:
// the integer codes of that very pass (trap 8), the latent code used for the
// confidence distance, the scale, and the latent parameter CGA may freeze.
// Layers implement QuantWeightSource; the tracker and CGA find them by walking
// named_modules(). Views alias the layer's tensors: read them on the training
// thread, before the next forward.

#include <string>

#include <ATen/ATen.h>

namespace pendulum::train::quant {

enum class WeightQuantKind { kStatsQ, kLsq };

struct QuantWeightView {
  WeightQuantKind kind = WeightQuantKind::kStatsQ;
  int bits = 0;
  at::Tensor param;   // latent weight parameter; undefined for derived weights (W_qk)
  at::Tensor codes;   // integer codes k of the last training forward (detached)
  at::Tensor latent;  // StatsQ: z = clip(W/s)·n − ½; LSQ: clamp(W/s) (detached)
  at::Tensor scale;   // per-row scale (detached)
  // Whether CGA freezes it (StatsQ block weights: fc1, fc2, proj, v, qkv).
  bool cga_target = false;
  // Low-bit integer range of the codes (for the threshold set).
  int64_t code_min = 0;
  int64_t code_max = 0;
};

class QuantWeightSource {
 public:
  virtual ~QuantWeightSource() = default;
  // False before the first training forward.
  virtual bool has_quant_view() const = 0;
  virtual QuantWeightView quant_view() const = 0;
};

}  // namespace pendulum::train::quant
