#pragma once
// VGG-16 with batch norm (model.arch "vgg16"), the CIFAR variant TSCNC uses
// (methods.md §5.3): 13 conv3×3-BN-ReLU layers in 5 stages (64, 128, 256, 512,
// 512) with 2×2 max-pooling between stages (skipped once the map is 1×1, so
// 28×28 inputs work), global average pooling and one Linear classifier.
// Module names: conv0..conv12, bn0..bn12, head. Not thread-safe.

#include <vector>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/models/model.h"

namespace pendulum::train {

class Vgg16 : public Model {
 public:
  Vgg16(int64_t in_channels, int64_t num_classes);
  ModelOutput Forward(const torch::Tensor& x) override;

 private:
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::BatchNorm2d> bns_;
  std::vector<bool> pool_after_;
  torch::nn::Linear head_{nullptr};
};

absl::StatusOr<ModelPtr> MakeVgg16(const v1::ModelSpec& spec, const ModelInputs& inputs);

}  // namespace pendulum::train
