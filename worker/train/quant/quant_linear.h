#pragma once
// Linear layer with a fake-quantized weight and input (qlinear.py: QLinear,
// LSQ_QLinear4head), methods.md §1.1–1.2. The same module is the
// full-precision layer when weight_quant = kNone and act_bits = 0, so FP and
// quantized models share one definition and one parameter naming
// ("weight", "bias", "act.*", "wq.*"). Not thread-safe.

#include <string>

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include "worker/train/quant/lsq_quantizer.h"
#include "worker/train/quant/quant_act.h"
#include "worker/train/quant/quant_weight_view.h"
#include "worker/train/quant/statsq_quantizer.h"

namespace pendulum::train::quant {

enum class WeightQuant { kNone, kStatsQ, kLsq };

// Parses "none" / "statsq" / "lsq" (empty = statsq). Throws c10::Error naming
// the value otherwise; callers at module edges convert it to a Status.
WeightQuant ParseWeightQuant(const std::string& name);

struct QuantLinearOptions {
  QuantLinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
  TORCH_ARG(WeightQuant, weight_quant) = WeightQuant::kNone;
  TORCH_ARG(int, weight_bits) = 32;
  // Input quantization: 0 = full precision.
  TORCH_ARG(int, act_bits) = 0;
  TORCH_ARG(bool, act_all_positive) = false;
  // Per token for (B, N, C) inputs; use kPerTensor for 2-D inputs (MLP, heads).
  TORCH_ARG(LsqGranularity, act_granularity) = LsqGranularity::kPerToken;
  TORCH_ARG(bool, act_shifts) = true;
  // CGA may freeze this weight (block linears; not the 8-bit heads).
  TORCH_ARG(bool, cga_target) = true;
};

class QuantLinearImpl : public torch::nn::Cloneable<QuantLinearImpl>, public QuantWeightSource {
 public:
  explicit QuantLinearImpl(QuantLinearOptions options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  // The weight as the forward uses it (quantized, with STE).
  at::Tensor QuantizedWeight();

  bool has_quant_view() const override;
  QuantWeightView quant_view() const override;

  QuantLinearOptions options;
  at::Tensor weight;
  at::Tensor bias;
  QuantAct act{nullptr};
  StatsQuantizer statsq{nullptr};
  LsqQuantizer lsq{nullptr};
};
TORCH_MODULE(QuantLinear);

struct QuantConv2dOptions {
  QuantConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_(kernel), stride_(kernel) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel);
  TORCH_ARG(int64_t, stride);
  // LSQ bits of the weight (per output channel) and of the input (per
  // tensor, signed). 0 = full precision.
  TORCH_ARG(int, weight_bits) = 0;
  TORCH_ARG(int, act_bits) = 0;
};

// Patch-embedding convolution (qlinear.py: LSQ_QConv2d): 8-bit LSQ weights
// per output channel. Deviation, documented: the input is quantized per
// tensor without the 224×224 shift tensors of the official code, which only
// fit 224-pixel inputs.
class QuantConv2dImpl : public torch::nn::Cloneable<QuantConv2dImpl>, public QuantWeightSource {
 public:
  explicit QuantConv2dImpl(QuantConv2dOptions options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);

  bool has_quant_view() const override;
  QuantWeightView quant_view() const override;

  QuantConv2dOptions options;
  at::Tensor weight;
  at::Tensor bias;
  LsqQuantizer wq{nullptr};
  LsqQuantizer aq{nullptr};
};
TORCH_MODULE(QuantConv2d);

}  // namespace pendulum::train::quant
