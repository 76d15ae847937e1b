#pragma once
// ReparamLayer: a Linear or Conv2d whose forward uses a weight (and bias) that
// is recomputed from latent parameters before every forward pass.
//
// How: torch's LinearImpl/Conv2dImpl forward reads the public `weight`/`bias`
// members, while the optimizer and checkpoints see the *registered* parameters
// (a separate handle to the same tensor). Reparameterisers (Weight Compander,
// TSCNC gates and HYDRA masks) keep the registered parameter as the latent
// tensor and point the member at the effective tensor, e.g. f(v) or w ⊙ z ⊙ m.
// Restore() points the members back at the registered parameters.
// Not thread-safe: call from the training thread only.

#include <string>
#include <vector>

#include <torch/nn/module.h>

namespace pendulum::train::reg {

struct ReparamLayer {
  std::string name;               // qualified module name, e.g. "fc1", "block1.conv1"
  torch::nn::Module* module = nullptr;  // not owned; lives as long as the model
  at::Tensor* weight_member = nullptr;  // the member forward() reads
  at::Tensor* bias_member = nullptr;    // nullptr when the layer has no bias
  bool is_conv = false;
  int64_t out_channels = 0;
  int64_t fan_in = 0;  // in * k * k

  // The registered (latent) parameters, as the optimizer sees them.
  at::Tensor latent_weight() const;
  at::Tensor latent_bias() const;  // undefined when no bias
  // Sets the members forward() reads (effective tensors); Restore() undoes it.
  void SetEffective(const at::Tensor& weight, const at::Tensor& bias) const;
  void Restore() const;
};

// Every Linear and Conv2d below `root` (in registration order). The pointers
// stay valid as long as the model does and its module tree is not changed.
std::vector<ReparamLayer> FindReparamLayers(torch::nn::Module& root);

}  // namespace pendulum::train::reg
