#include "worker/train/models/resnet_head.h"

#include <cmath>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/nn/init.h>
#include <torch/utils.h>

namespace pendulum::train::models {

GrowableLinearImpl::GrowableLinearImpl(int64_t in_features, int64_t out_features, bool bias)
    : in_features_(in_features), out_features_(out_features), has_bias_(bias) {
  reset();
}

namespace {
at::Tensor FreshWeight(int64_t out, int64_t in) {
  // kaiming_uniform_(nonlinearity='linear'): bound = sqrt(3 / fan_in).
  const double bound = std::sqrt(3.0 / static_cast<double>(in));
  return at::empty({out, in}).uniform_(-bound, bound);
}
}  // namespace

void GrowableLinearImpl::reset() {
  TORCH_CHECK(in_features_ > 0 && out_features_ >= 0, "GrowableLinear: bad sizes ", in_features_, "x",
              out_features_);
  torch::NoGradGuard no_grad;
  weight = register_parameter("weight", FreshWeight(out_features_, in_features_));
  if (has_bias_) bias = register_parameter("bias", at::zeros({out_features_}));
}

torch::Tensor GrowableLinearImpl::forward(const torch::Tensor& x) {
  return has_bias_ ? at::linear(x, weight, bias) : at::linear(x, weight);
}

void GrowableLinearImpl::Grow(int64_t out_features) {
  TORCH_CHECK(out_features >= out_features_, "GrowableLinear::Grow: cannot shrink from ", out_features_, " to ",
              out_features);
  if (out_features == out_features_) return;
  torch::NoGradGuard no_grad;
  const auto options = weight.options();
  at::Tensor w = FreshWeight(out_features, in_features_).to(options);
  w.narrow(0, 0, out_features_).copy_(weight);
  // Replace the registered tensors (the parameter dict holds handles).
  parameters_["weight"] = w.set_requires_grad(true);
  weight = parameters_["weight"];
  if (has_bias_) {
    at::Tensor b = at::zeros({out_features}, options);
    b.narrow(0, 0, out_features_).copy_(bias);
    parameters_["bias"] = b.set_requires_grad(true);
    bias = parameters_["bias"];
  }
  out_features_ = out_features;
}

ModelOutput FeatureClassifier::Forward(const torch::Tensor& x) {
  ModelOutput out;
  at::Tensor f = features(x);
  out.logits = fc_->forward(f);
  out.extra["features"] = f;
  return out;
}

void FeatureClassifier::InitClassifier(int64_t feature_dim, int64_t num_classes, bool bias) {
  fc_ = register_module("fc", GrowableLinear(feature_dim, num_classes, bias));
}

void CopyModuleState(torch::nn::Module& src, torch::nn::Module& dst) {
  torch::NoGradGuard no_grad;
  auto src_params = src.named_parameters(/*recurse=*/true);
  auto dst_params = dst.named_parameters(/*recurse=*/true);
  TORCH_CHECK(src_params.size() == dst_params.size(), "CopyModuleState: ", src_params.size(), " vs ",
              dst_params.size(), " parameters");
  for (const auto& item : src_params) {
    at::Tensor* target = dst_params.find(item.key());
    TORCH_CHECK(target != nullptr, "CopyModuleState: no parameter ", item.key());
    TORCH_CHECK(target->sizes() == item.value().sizes(), "CopyModuleState: size mismatch for ", item.key());
    target->copy_(item.value());
  }
  auto src_buffers = src.named_buffers(/*recurse=*/true);
  auto dst_buffers = dst.named_buffers(/*recurse=*/true);
  for (const auto& item : src_buffers) {
    at::Tensor* target = dst_buffers.find(item.key());
    TORCH_CHECK(target != nullptr, "CopyModuleState: no buffer ", item.key());
    target->copy_(item.value());
  }
}

}  // namespace pendulum::train::models
