#pragma once
// LinearChain: the network form the Interaction Basis analysis works on (an
// MLP): node layer 0 is the input, f^{l+1} = act_l(W_l f^l + b_l), and the last
// node layer L is the output of the last Linear (act = identity). Everything is
// float64 (methods.md §6.5 trap 2). Extracted from a model whose Linear layers
// run in registration order with elementwise ReLU/identity between them (mlp,
// block_mlp); other architectures are rejected. Value type; thread-compatible.

#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include "absl/status/statusor.h"

namespace pendulum::train::analysis {

enum class Activation { kIdentity, kRelu };

struct LinearChain {
  std::vector<at::Tensor> weights;  // W_l: d_{l+1} × d_l, float64
  std::vector<at::Tensor> biases;   // b_l: d_{l+1} (zeros when the layer has no bias)
  std::vector<Activation> acts;     // after layer l; the last is kIdentity

  size_t num_layers() const { return weights.size(); }  // L
  int64_t width(size_t node_layer) const;               // d_l (without the constant)
  // Node-layer activations f^0..f^L for inputs x (N × d_0), no grad.
  std::vector<at::Tensor> NodeActivations(const at::Tensor& x) const;
  // Runs the chain from node layer `from` (activations f, N × d_from) to the output.
  at::Tensor ForwardFrom(size_t from, const at::Tensor& f) const;
  // Elementwise derivative act_l'(pre) for node layer l's outgoing layer.
  at::Tensor ActDerivative(size_t l, const at::Tensor& pre) const;
};

// Reads every Linear of `model` in registration order, with ReLU between them
// and identity after the last. INVALID_ARGUMENT naming the offending module if
// the model contains something else that computes (conv, norm, attention).
absl::StatusOr<LinearChain> LinearChainFromModule(torch::nn::Module& model);

}  // namespace pendulum::train::analysis
