#include "worker/train/reg/reparam_layer.h"

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace pendulum::train::reg {

at::Tensor ReparamLayer::latent_weight() const {
  return module->named_parameters(/*recurse=*/false)["weight"];
}

at::Tensor ReparamLayer::latent_bias() const {
  auto params = module->named_parameters(/*recurse=*/false);
  const at::Tensor* b = params.find("bias");
  return (b == nullptr) ? at::Tensor() : *b;
}

void ReparamLayer::SetEffective(const at::Tensor& weight, const at::Tensor& bias) const {
  *weight_member = weight;
  if (bias_member != nullptr && bias.defined()) *bias_member = bias;
}

void ReparamLayer::Restore() const {
  *weight_member = latent_weight();
  if (bias_member != nullptr) *bias_member = latent_bias();
}

std::vector<ReparamLayer> FindReparamLayers(torch::nn::Module& root) {
  std::vector<ReparamLayer> layers;
  for (const auto& item : root.named_modules(/*name_prefix=*/"", /*include_self=*/true)) {
    torch::nn::Module* m = item.value().get();
    ReparamLayer layer;
    layer.name = item.key().empty() ? "root" : item.key();
    layer.module = m;
    if (auto* lin = m->as<torch::nn::LinearImpl>()) {
      layer.weight_member = &lin->weight;
      layer.bias_member = lin->bias.defined() ? &lin->bias : nullptr;
      layer.out_channels = lin->weight.size(0);
      layer.fan_in = lin->weight.size(1);
    } else if (auto* conv = m->as<torch::nn::Conv2dImpl>()) {
      layer.weight_member = &conv->weight;
      layer.bias_member = conv->bias.defined() ? &conv->bias : nullptr;
      layer.is_conv = true;
      layer.out_channels = conv->weight.size(0);
      layer.fan_in = conv->weight.numel() / conv->weight.size(0);
    } else {
      continue;
    }
    layers.push_back(layer);
  }
  return layers;
}

}  // namespace pendulum::train::reg
