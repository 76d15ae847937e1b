#include "worker/train/quant/quant_linear.h"

#include <cmath>

#include <c10/util/Exception.h>
#include <torch/nn/init.h>

#include "worker/train/quant/ste_ops.h"

namespace pendulum::train::quant {

WeightQuant ParseWeightQuant(const std::string& name) {
  if (name.empty() || name == "statsq") return WeightQuant::kStatsQ;
  if (name == "lsq") return WeightQuant::kLsq;
  if (name == "none") return WeightQuant::kNone;
  TORCH_CHECK(false, "weight_quantizer: got '", name, "', allowed: statsq, lsq, none");
  return WeightQuant::kNone;
}

QuantLinearImpl::QuantLinearImpl(QuantLinearOptions options_) : options(std::move(options_)) { reset(); }

void QuantLinearImpl::reset() {
  TORCH_CHECK(options.in_features() > 0 && options.out_features() > 0, "QuantLinear needs positive sizes");
  weight = register_parameter("weight", at::empty({options.out_features(), options.in_features()}));
  // torch.nn.Linear's default init (kaiming_uniform a=√5, bias U(±1/√fan_in)).
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (options.bias()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(options.in_features()));
    bias = register_parameter("bias", at::empty({options.out_features()}));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
  if (options.act_bits() > 0) {
    act = register_module("act", QuantAct(QuantActOptions(options.in_features(), options.act_bits())
                                              .all_positive(options.act_all_positive())
                                              .granularity(options.act_granularity())
                                              .shifts(options.act_shifts())));
  }
  switch (options.weight_quant()) {
    case WeightQuant::kNone:
      break;
    case WeightQuant::kStatsQ:
      statsq = register_module("wq", StatsQuantizer(StatsQuantizerOptions(options.weight_bits())));
      break;
    case WeightQuant::kLsq:
      lsq = register_module("wq", LsqQuantizer(LsqQuantizerOptions(options.weight_bits())
                                                   .granularity(LsqGranularity::kPerOutput)));
      lsq->keep_codes(true);
      break;
  }
}

at::Tensor QuantLinearImpl::QuantizedWeight() {
  switch (options.weight_quant()) {
    case WeightQuant::kNone:
      return weight;
    case WeightQuant::kStatsQ:
      return statsq->forward(weight);
    case WeightQuant::kLsq:
      return lsq->forward(weight);
  }
  return weight;
}

at::Tensor QuantLinearImpl::forward(const at::Tensor& x) {
  at::Tensor w = QuantizedWeight();
  at::Tensor in = act ? act->forward(x) : x;
  return at::linear(in, w, bias);
}

bool QuantLinearImpl::has_quant_view() const {
  if (options.weight_quant() == WeightQuant::kStatsQ) return statsq->last_codes().defined();
  if (options.weight_quant() == WeightQuant::kLsq) return lsq->last_codes().defined();
  return false;
}

QuantWeightView QuantLinearImpl::quant_view() const {
  QuantWeightView v;
  v.param = weight;
  if (options.weight_quant() == WeightQuant::kStatsQ) {
    v.kind = WeightQuantKind::kStatsQ;
    v.bits = options.weight_bits();
    v.codes = statsq->last_codes();
    v.latent = statsq->last_latent();
    v.scale = statsq->last_scale();
    v.code_min = -(int64_t{1} << (v.bits - 1));
    v.code_max = (int64_t{1} << (v.bits - 1)) - 1;
    v.cga_target = options.cga_target();
  } else {
    v.kind = WeightQuantKind::kLsq;
    v.bits = options.weight_bits();
    v.codes = lsq->last_codes();
    v.latent = lsq->last_latent();
    v.scale = lsq->scale().detach();
    const IntRange r = LsqIntRange(v.bits, false);
    v.code_min = r.neg;
    v.code_max = r.pos;
    v.cga_target = false;
  }
  return v;
}

QuantConv2dImpl::QuantConv2dImpl(QuantConv2dOptions options_) : options(std::move(options_)) { reset(); }

void QuantConv2dImpl::reset() {
  weight = register_parameter(
      "weight", at::empty({options.out_channels(), options.in_channels(), options.kernel(), options.kernel()}));
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  const double fan_in = static_cast<double>(options.in_channels() * options.kernel() * options.kernel());
  bias = register_parameter("bias", at::empty({options.out_channels()}));
  torch::nn::init::uniform_(bias, -1.0 / std::sqrt(fan_in), 1.0 / std::sqrt(fan_in));
  if (options.weight_bits() > 0) {
    wq = register_module("wq", LsqQuantizer(LsqQuantizerOptions(options.weight_bits())
                                                .granularity(LsqGranularity::kPerOutput)));
    wq->keep_codes(true);
  }
  if (options.act_bits() > 0) {
    aq = register_module("aq", LsqQuantizer(LsqQuantizerOptions(options.act_bits())
                                                .granularity(LsqGranularity::kPerTensor)));
  }
}

at::Tensor QuantConv2dImpl::forward(const at::Tensor& x) {
  at::Tensor w = wq ? wq->forward(weight) : weight;
  at::Tensor in = aq ? aq->forward(x) : x;
  return at::conv2d(in, w, bias, {options.stride(), options.stride()});
}

bool QuantConv2dImpl::has_quant_view() const { return wq && wq->last_codes().defined(); }

QuantWeightView QuantConv2dImpl::quant_view() const {
  QuantWeightView v;
  v.kind = WeightQuantKind::kLsq;
  v.bits = options.weight_bits();
  v.param = weight;
  v.codes = wq->last_codes();
  v.latent = wq->last_latent();
  v.scale = wq->scale().detach();
  const IntRange r = LsqIntRange(v.bits, false);
  v.code_min = r.neg;
  v.code_max = r.pos;
  return v;
}

}  // namespace pendulum::train::quant
