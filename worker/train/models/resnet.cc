#include "worker/train/models/resnet.h"

#include <vector>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

#include "absl/strings/str_cat.h"
#include "worker/train/models/model_registry.h"

namespace pendulum::train::models {
namespace {

torch::nn::Conv2d Conv3x3(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

// Kaiming-normal (fan_out, relu) convs and unit/zero BN, as torchvision and PyCIL do.
void InitConvAndBn(torch::nn::Module& root) {
  torch::NoGradGuard no_grad;
  for (auto& m : root.modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
      torch::nn::init::ones_(bn->weight);
      torch::nn::init::zeros_(bn->bias);
    }
  }
}

at::Tensor GlobalAvgPool(const at::Tensor& x) { return x.mean({2, 3}); }

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, bool option_a)
    : stride_(stride), option_a_(option_a) {
  conv1_ = register_module("conv1", Conv3x3(in_planes, planes, stride));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2_ = register_module("conv2", Conv3x3(planes, planes, 1));
  bn2_ = register_module("bn2", torch::nn::BatchNorm2d(planes));
  if (stride != 1 || in_planes != planes) {
    if (option_a) {
      extra_channels_ = planes - in_planes;
    } else {
      projection_ = register_module(
          "downsample",
          torch::nn::Sequential(
              torch::nn::Conv2d(torch::nn::Conv2dOptions(in_planes, planes, 1).stride(stride).bias(false)),
              torch::nn::BatchNorm2d(planes)));
    }
  }
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  at::Tensor out = at::relu(bn1_->forward(conv1_->forward(x)));
  out = bn2_->forward(conv2_->forward(out));
  at::Tensor shortcut = x;
  if (option_a_) {
    // PyCIL DownsampleA: AvgPool2d(kernel 1, stride 2) then zero channels.
    if (stride_ != 1) shortcut = shortcut.slice(2, 0, shortcut.size(2), stride_).slice(3, 0, shortcut.size(3), stride_);
    if (extra_channels_ > 0) shortcut = at::constant_pad_nd(shortcut, {0, 0, 0, 0, 0, extra_channels_});
  } else if (projection_) {
    shortcut = projection_->forward(x);
  }
  return at::relu(out + shortcut);
}

ResNet32::ResNet32(int64_t num_classes, bool fc_bias, int64_t in_channels) : FeatureClassifier("resnet32") {
  stem_ = register_module("conv1", Conv3x3(in_channels, 16, 1));
  stem_bn_ = register_module("bn1", torch::nn::BatchNorm2d(16));
  torch::nn::Sequential stages;
  int64_t in_planes = 16;
  for (int64_t planes : {16, 32, 64}) {
    for (int block = 0; block < 5; ++block) {
      const int64_t stride = (block == 0 && planes != 16) ? 2 : 1;
      stages->push_back(BasicBlock(in_planes, planes, stride, /*option_a=*/true));
      in_planes = planes;
    }
  }
  stages_ = register_module("stages", stages);
  InitConvAndBn(*this);
  InitClassifier(64, num_classes, fc_bias);
}

torch::Tensor ResNet32::features(const torch::Tensor& x) {
  at::Tensor h = at::relu(stem_bn_->forward(stem_->forward(x)));
  return GlobalAvgPool(stages_->forward(h));
}

ResNet18::ResNet18(int64_t num_classes, bool fc_bias, int64_t in_channels, bool small_input)
    : FeatureClassifier("resnet18"), small_input_(small_input) {
  stem_ = register_module(
      "conv1", small_input ? Conv3x3(in_channels, 64, 1)
                           : torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, 64, 7).stride(2).padding(3).bias(false)));
  stem_bn_ = register_module("bn1", torch::nn::BatchNorm2d(64));
  torch::nn::Sequential stages;
  int64_t in_planes = 64;
  for (int64_t planes : {64, 128, 256, 512}) {
    for (int block = 0; block < 2; ++block) {
      const int64_t stride = (block == 0 && planes != 64) ? 2 : 1;
      stages->push_back(BasicBlock(in_planes, planes, stride, /*option_a=*/false));
      in_planes = planes;
    }
  }
  stages_ = register_module("stages", stages);
  InitConvAndBn(*this);
  InitClassifier(512, num_classes, fc_bias);
}

torch::Tensor ResNet18::features(const torch::Tensor& x) {
  at::Tensor h = at::relu(stem_bn_->forward(stem_->forward(x)));
  if (!small_input_) h = at::max_pool2d(h, {3, 3}, {2, 2}, {1, 1});
  return GlobalAvgPool(stages_->forward(h));
}

absl::StatusOr<std::shared_ptr<FeatureClassifier>> MakeResNet(const ResNetConfig& config) {
  if (config.num_classes < 0 || config.num_classes > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.num_classes: got ", config.num_classes, ", must be in 0..100000"));
  }
  if (config.in_channels < 1 || config.in_channels > 64) {
    return absl::InvalidArgumentError(absl::StrCat("in_channels: got ", config.in_channels, ", must be in 1..64"));
  }
  if (config.arch == "resnet32") {
    return std::shared_ptr<FeatureClassifier>(
        std::make_shared<ResNet32>(config.num_classes, config.fc_bias, config.in_channels));
  }
  if (config.arch == "resnet18") {
    return std::shared_ptr<FeatureClassifier>(
        std::make_shared<ResNet18>(config.num_classes, config.fc_bias, config.in_channels, config.small_input));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("model.arch: got '", config.arch, "', ResNet builder knows resnet32, resnet18"));
}

absl::StatusOr<ModelPtr> MakeResNetFromSpec(const v1::ModelSpec& spec, const ModelInputs& inputs) {
  if (inputs.example_shape.size() != 3 || inputs.example_shape[1] < 8 || inputs.example_shape[2] < 8) {
    return absl::InvalidArgumentError(absl::StrCat("spec.model.arch: ", spec.arch(),
                                                   " needs image examples [C, H, W] with H, W >= 8"));
  }
  ResNetConfig config;
  config.arch = spec.arch();
  config.num_classes = inputs.num_classes;
  config.fc_bias = !spec.has_fc_bias() || spec.fc_bias();
  config.in_channels = inputs.example_shape[0];
  // The 7x7/2 stem + max pool only pays off on large images (ImageNet).
  config.small_input = inputs.example_shape[1] < 96;
  auto model = MakeResNet(config);
  if (!model.ok()) return model.status();
  return ModelPtr(*model);
}

PENDULUM_REGISTER_MODEL(resnet32, MakeResNetFromSpec);
PENDULUM_REGISTER_MODEL(resnet18, MakeResNetFromSpec);

}  // namespace pendulum::train::models
