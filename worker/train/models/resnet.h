#pragma once
// ResNets for Pendulum's class-incremental runs and for plain training:
//  - ResNet32: the CIFAR ResNet (He et al. 2016, §4.2; PyCIL convs/cifar_resnet.py
//    `resnet32`): 3×3 conv 16, three stages of 5 basic blocks (16/32/64
//    channels), option-A shortcuts (stride-2 subsample + zero channels),
//    global average pool → 64-d features.
//  - ResNet18: torchvision's layout (basic blocks [2,2,2,2], 64..512 channels,
//    1×1 conv shortcuts) → 512-d features; `small_input` swaps the 7×7/2 stem
//    and max pool for a 3×3/1 conv, the usual variant for 32×32 images.
// Both are FeatureClassifiers: features(x) and forward(x) = fc(features(x)),
// with a GrowableLinear fc (optionally without bias). Pooling is adaptive, so
// any input size ≥ 8 px works (28×28 Fashion-MNIST included, in_channels 1).

#include <cstdint>
#include <memory>
#include <string>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/models/resnet_head.h"

namespace pendulum::train::models {

struct ResNetConfig {
  std::string arch = "resnet32";  // "resnet32" | "resnet18"
  int64_t num_classes = 10;       // initial fc outputs (>= 0; grows with GrowClasses)
  bool fc_bias = true;
  int64_t in_channels = 3;
  bool small_input = true;  // resnet18 only: 3×3/1 stem, no max pool
};

// INVALID_ARGUMENT naming the field for an unknown arch or bad sizes.
absl::StatusOr<std::shared_ptr<FeatureClassifier>> MakeResNet(const ResNetConfig& config);

// The ModelRegistry builders of "resnet32" and "resnet18" (registered in
// resnet.cc): image data [C, H, W] with H, W >= 8; spec.fc_bias (default true).
absl::StatusOr<ModelPtr> MakeResNetFromSpec(const v1::ModelSpec& spec, const ModelInputs& inputs);

// A basic residual block (two 3×3 convs with BN). option_a: CIFAR shortcut
// (subsample + zero-padded channels); otherwise a 1×1 conv + BN projection.
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, bool option_a);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Sequential projection_{nullptr};  // option B only
  int64_t stride_;
  int64_t extra_channels_ = 0;  // option A zero channels
  bool option_a_;
};
TORCH_MODULE(BasicBlock);

class ResNet32 : public FeatureClassifier {
 public:
  ResNet32(int64_t num_classes, bool fc_bias, int64_t in_channels);
  torch::Tensor features(const torch::Tensor& x) override;

 private:
  torch::nn::Conv2d stem_{nullptr};
  torch::nn::BatchNorm2d stem_bn_{nullptr};
  torch::nn::Sequential stages_{nullptr};
};

class ResNet18 : public FeatureClassifier {
 public:
  ResNet18(int64_t num_classes, bool fc_bias, int64_t in_channels, bool small_input);
  torch::Tensor features(const torch::Tensor& x) override;

 private:
  torch::nn::Conv2d stem_{nullptr};
  torch::nn::BatchNorm2d stem_bn_{nullptr};
  torch::nn::Sequential stages_{nullptr};
  bool small_input_;
};

}  // namespace pendulum::train::models
