#include "worker/train/quant/quant_mlp.h"

#include "absl/strings/str_cat.h"

namespace pendulum::train::quant {

QuantMlp::QuantMlp(const QuantMlpOptions& o) : Model("mlp"), options_(o) {
  int64_t in = o.in_features;
  for (size_t i = 0; i < o.hidden.size(); ++i) {
    QuantLinearOptions lo(in, o.hidden[i]);
    const bool first = i == 0;
    if (!o.quantize) {
      // Full precision: plain linear layers.
    } else if (first) {
      lo.weight_quant(WeightQuant::kLsq).weight_bits(o.embed_head_bits).cga_target(false);
    } else {
      lo.weight_quant(o.weight_quant).weight_bits(o.weight_bits);
    }
    if (o.quantize && o.act_bits > 0) {
      lo.act_bits(first ? o.embed_head_bits : o.act_bits)
          .act_all_positive(!first && !o.gelu)
          .act_granularity(LsqGranularity::kPerTensor);
    }
    hidden_.push_back(register_module("fc" + std::to_string(i), QuantLinear(lo)));
    in = o.hidden[i];
  }
  QuantLinearOptions ho(in, o.num_classes);
  ho.bias(o.fc_bias).cga_target(false);
  if (o.quantize) ho.weight_quant(WeightQuant::kLsq).weight_bits(o.embed_head_bits);
  if (o.quantize && o.act_bits > 0) {
    ho.act_bits(o.embed_head_bits).act_all_positive(!o.gelu).act_granularity(LsqGranularity::kPerTensor);
  }
  head_ = register_module("head", QuantLinear(ho));
}

ModelOutput QuantMlp::Forward(const torch::Tensor& x) {
  torch::Tensor h = x.reshape({x.size(0), -1});
  for (auto& l : hidden_) {
    h = l->forward(h);
    h = options_.gelu ? torch::gelu(h) : torch::relu(h);
  }
  ModelOutput out;
  out.extra["features"] = h;
  out.logits = head_->forward(h);
  return out;
}

absl::StatusOr<std::shared_ptr<QuantMlp>> MakeQuantMlp(const v1::ModelSpec& spec, const ModelInputs& inputs,
                                                       const v1::OfqMethod& ofq) {
  QuantMlpOptions o;
  o.in_features = inputs.flat_size();
  o.num_classes = spec.num_classes() > 0 ? spec.num_classes() : inputs.num_classes;
  if (spec.hidden_size() > 0) o.hidden.assign(spec.hidden().begin(), spec.hidden().end());
  o.gelu = spec.activation() == "gelu";
  o.fc_bias = spec.has_fc_bias() ? spec.fc_bias() : true;
  const std::string& wq = ofq.weight_quantizer();
  if (wq == "lsq") {
    o.weight_quant = WeightQuant::kLsq;
  } else if (!wq.empty() && wq != "statsq") {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.method.ofq.weight_quantizer: got '", wq, "', allowed: statsq, lsq"));
  }
  o.weight_bits = ofq.weight_bits() ? static_cast<int>(ofq.weight_bits()) : 2;
  o.act_bits = static_cast<int>(ofq.act_bits());
  o.embed_head_bits = ofq.has_embed_head_bits() ? static_cast<int>(ofq.embed_head_bits()) : 8;
  if (o.in_features <= 0) return absl::InvalidArgumentError("spec.model: mlp needs a known input size");
  return std::make_shared<QuantMlp>(o);
}

}  // namespace pendulum::train::quant
