#include "worker/train/incremental/incremental_net.h"

#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace pendulum::train::incremental {

IncrementalNet::IncrementalNet(ModelPtr backbone, int64_t feature_dim, int64_t num_classes, bool fc_bias)
    : Model(backbone->arch()), backbone_(std::move(backbone)) {
  register_module("backbone", backbone_);
  fc_ = register_module("fc", models::GrowableLinear(feature_dim, num_classes, fc_bias));
}

ModelOutput IncrementalNet::Forward(const torch::Tensor& x) {
  ModelOutput b = backbone_->Forward(x);
  auto it = b.extra.find("features");
  TORCH_CHECK(it != b.extra.end(), "model '", arch(), "' reports no penultimate features");
  at::Tensor f = it->second.flatten(1);
  ModelOutput out;
  out.logits = fc_->forward(f);
  out.extra["features"] = f;
  return out;
}

absl::StatusOr<int64_t> ProbeFeatureDim(Model& backbone, const std::vector<int64_t>& example_shape) {
  const bool was_training = backbone.is_training();
  backbone.eval();
  torch::NoGradGuard no_grad;
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), example_shape.begin(), example_shape.end());
  const auto device = backbone.parameters().empty() ? at::Device(at::kCPU) : backbone.parameters()[0].device();
  ModelOutput out = backbone.Forward(at::zeros(shape, at::TensorOptions().device(device)));
  backbone.train(was_training);
  auto it = out.extra.find("features");
  if (it == out.extra.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "spec.model.arch: '", backbone.arch(),
        "' reports no penultimate features, which class-incremental learning needs (use cnn_small, resnet32, resnet18)"));
  }
  return it->second.flatten(1).size(1);
}

}  // namespace pendulum::train::incremental
