#include "worker/train/analysis/linear_chain.h"

#include <string>

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"

namespace pendulum::train::analysis {

int64_t LinearChain::width(size_t node_layer) const {
  return node_layer == 0 ? weights.front().size(1) : weights.at(node_layer - 1).size(0);
}

at::Tensor LinearChain::ActDerivative(size_t l, const at::Tensor& pre) const {
  return acts[l] == Activation::kRelu ? (pre > 0).to(at::kDouble) : at::ones_like(pre);
}

at::Tensor LinearChain::ForwardFrom(size_t from, const at::Tensor& f) const {
  at::Tensor h = f.to(at::kDouble);
  for (size_t l = from; l < weights.size(); ++l) {
    h = at::addmm(biases[l], h, weights[l].t());
    if (acts[l] == Activation::kRelu) h = at::relu(h);
  }
  return h;
}

std::vector<at::Tensor> LinearChain::NodeActivations(const at::Tensor& x) const {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> f{x.to(at::kDouble).reshape({x.size(0), -1})};
  for (size_t l = 0; l < weights.size(); ++l) {
    at::Tensor h = at::addmm(biases[l], f.back(), weights[l].t());
    if (acts[l] == Activation::kRelu) h = at::relu(h);
    f.push_back(h);
  }
  return f;
}

absl::StatusOr<LinearChain> LinearChainFromModule(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  LinearChain chain;
  for (const auto& item : model.named_modules("", /*include_self=*/true)) {
    torch::nn::Module* m = item.value().get();
    if (auto* lin = m->as<torch::nn::LinearImpl>()) {
      chain.weights.push_back(lin->weight.detach().to(at::kDouble).clone());
      chain.biases.push_back(lin->bias.defined() ? lin->bias.detach().to(at::kDouble).clone()
                                                 : at::zeros({lin->weight.size(0)}, at::kDouble));
      chain.acts.push_back(Activation::kRelu);
      continue;
    }
    // Containers, ReLU, flatten and dropout (identity at eval) add nothing;
    // a module with parameters of its own (conv, norm, ...) or another
    // activation does, and the analysis cannot follow it.
    const bool other_activation = m->as<torch::nn::GELUImpl>() || m->as<torch::nn::TanhImpl>() ||
                                  m->as<torch::nn::SigmoidImpl>() || m->as<torch::nn::SiLUImpl>();
    if (!other_activation && m->parameters(/*recurse=*/false).empty() &&
        m->buffers(/*recurse=*/false).empty()) {
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "interaction_basis: module \"", item.key(), "\" (", m->name(),
        ") is not supported; the analysis needs an MLP of Linear + ReLU layers (mlp, block_mlp)"));
  }
  if (chain.weights.empty()) {
    return absl::InvalidArgumentError("interaction_basis: the model has no Linear layer");
  }
  for (size_t l = 1; l < chain.weights.size(); ++l) {
    if (chain.weights[l].size(1) != chain.weights[l - 1].size(0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "interaction_basis: Linear layers do not chain (layer ", l, " expects ",
          chain.weights[l].size(1), " inputs, layer ", l - 1, " gives ", chain.weights[l - 1].size(0), ")"));
    }
  }
  chain.acts.back() = Activation::kIdentity;
  return chain;
}

}  // namespace pendulum::train::analysis
