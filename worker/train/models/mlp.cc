#include "worker/train/models/mlp.h"

#include <string>

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "worker/train/models/model_registry.h"

namespace pendulum::train {

Mlp::Mlp(const MlpOptions& options) : Model("mlp"), options_(options) {
  int64_t in = options_.in_features;
  for (size_t i = 0; i < options_.hidden.size(); ++i) {
    hidden_.push_back(register_module("fc" + std::to_string(i),
                                      torch::nn::Linear(in, options_.hidden[i])));
    in = options_.hidden[i];
  }
  head_ = register_module(
      "head", torch::nn::Linear(torch::nn::LinearOptions(in, options_.num_classes)
                                    .bias(options_.fc_bias)));
}

ModelOutput Mlp::Forward(const torch::Tensor& x) {
  torch::Tensor h = x.reshape({x.size(0), -1});
  for (auto& layer : hidden_) {
    h = layer->forward(h);
    h = options_.gelu ? at::gelu(h) : at::relu(h);
  }
  ModelOutput out;
  out.extra["features"] = h;
  if (options_.dropout > 0) h = at::dropout(h, options_.dropout, is_training());
  out.logits = head_->forward(h);
  return out;
}

absl::StatusOr<ModelPtr> MakeMlp(const v1::ModelSpec& spec, const ModelInputs& inputs) {
  MlpOptions o;
  o.in_features = inputs.flat_size();
  o.num_classes = inputs.num_classes;
  if (spec.hidden_size() > 0) o.hidden.assign(spec.hidden().begin(), spec.hidden().end());
  for (int i = 0; i < spec.hidden_size(); ++i) {
    if (spec.hidden(i) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.model.hidden[", i, "]: got 0, must be 1..65536"));
    }
  }
  if (!spec.activation().empty() && spec.activation() != "relu" && spec.activation() != "gelu") {
    return absl::InvalidArgumentError(absl::StrCat("spec.model.activation: got '",
                                                   spec.activation(), "', allowed: relu, gelu"));
  }
  o.gelu = spec.activation() == "gelu";
  o.dropout = spec.dropout();
  o.fc_bias = !spec.has_fc_bias() || spec.fc_bias();
  return ModelPtr(std::make_shared<Mlp>(o));
}

PENDULUM_REGISTER_MODEL(mlp, MakeMlp);

}  // namespace pendulum::train
