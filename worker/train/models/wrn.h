#pragma once
// Wide-ResNet (model.arch "wrn"; Zagoruyko & Komodakis), the TSCNC backbone
// (methods.md §5.3): conv3×3 → 3 groups of n = (depth−4)/6 pre-activation
// basic blocks of width 16k, 32k, 64k (strides 1, 2, 2) → BN-ReLU-avgpool-fc.
// Depth/width from spec.model.wrn_depth (default 28) / wrn_width (default 10).
// Module names: stem, group{g}.block{b}.{bn1,conv1,bn2,conv2,shortcut}, bn, head.
// TSCNC gates "…conv1" (the first conv of every block, trap 5.6.2); convs have
// no bias. Not thread-safe (a torch module).

#include <vector>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/models/model.h"

namespace pendulum::train {

class WrnBlockImpl : public torch::nn::Module {
 public:
  WrnBlockImpl(int64_t in, int64_t out, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, shortcut_{nullptr};
};
TORCH_MODULE(WrnBlock);

// One group of blocks, registered as block0, block1, ... (torch module names
// cannot contain dots, so the group is its own module).
class WrnGroupImpl : public torch::nn::Module {
 public:
  WrnGroupImpl(int64_t n, int64_t in, int64_t out, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  std::vector<WrnBlock> blocks_;
};
TORCH_MODULE(WrnGroup);

struct WrnOptions {
  int64_t depth = 28;
  int64_t width = 10;
  int64_t in_channels = 3;
  int64_t num_classes = 10;
};

class Wrn : public Model {
 public:
  explicit Wrn(const WrnOptions& options);
  ModelOutput Forward(const torch::Tensor& x) override;

 private:
  torch::nn::Conv2d stem_{nullptr};
  std::vector<WrnGroup> groups_;
  torch::nn::BatchNorm2d bn_{nullptr};
  torch::nn::Linear head_{nullptr};
};

absl::StatusOr<ModelPtr> MakeWrn(const v1::ModelSpec& spec, const ModelInputs& inputs);

}  // namespace pendulum::train
