#include "worker/train/models/wrn.h"

#include <string>

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include "absl/strings/str_cat.h"
#include "worker/train/models/model_registry.h"

namespace pendulum::train {
namespace {

torch::nn::Conv2d Conv(int64_t in, int64_t out, int64_t k, int64_t stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false));
}

}  // namespace

WrnBlockImpl::WrnBlockImpl(int64_t in, int64_t out, int64_t stride) {
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(in));
  conv1_ = register_module("conv1", Conv(in, out, 3, stride));
  bn2_ = register_module("bn2", torch::nn::BatchNorm2d(out));
  conv2_ = register_module("conv2", Conv(out, out, 3, 1));
  if (in != out || stride != 1) shortcut_ = register_module("shortcut", Conv(in, out, 1, stride));
}

torch::Tensor WrnBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor o = at::relu(bn1_->forward(x));
  torch::Tensor y = conv1_->forward(o);
  y = conv2_->forward(at::relu(bn2_->forward(y)));
  return y + (shortcut_ ? shortcut_->forward(o) : x);
}

WrnGroupImpl::WrnGroupImpl(int64_t n, int64_t in, int64_t out, int64_t stride) {
  for (int64_t b = 0; b < n; ++b) {
    blocks_.push_back(register_module(absl::StrCat("block", b), WrnBlock(b == 0 ? in : out, out,
                                                                          b == 0 ? stride : 1)));
  }
}

torch::Tensor WrnGroupImpl::forward(torch::Tensor x) {
  for (auto& b : blocks_) x = b->forward(x);
  return x;
}

Wrn::Wrn(const WrnOptions& o) : Model("wrn") {
  const int64_t n = (o.depth - 4) / 6;
  const int64_t widths[3] = {16 * o.width, 32 * o.width, 64 * o.width};
  stem_ = register_module("stem", Conv(o.in_channels, 16, 3, 1));
  int64_t in = 16;
  for (int g = 0; g < 3; ++g) {
    groups_.push_back(register_module(absl::StrCat("group", g), WrnGroup(n, in, widths[g], g == 0 ? 1 : 2)));
    in = widths[g];
  }
  bn_ = register_module("bn", torch::nn::BatchNorm2d(in));
  head_ = register_module("head", torch::nn::Linear(in, o.num_classes));
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    }
  }
}

ModelOutput Wrn::Forward(const torch::Tensor& x) {
  torch::Tensor h = stem_->forward(x);
  for (auto& g : groups_) h = g->forward(h);
  h = at::relu(bn_->forward(h));
  h = at::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
  ModelOutput out;
  out.extra["features"] = h;
  out.logits = head_->forward(h);
  return out;
}

absl::StatusOr<ModelPtr> MakeWrn(const v1::ModelSpec& spec, const ModelInputs& inputs) {
  WrnOptions o;
  if (spec.wrn_depth() > 0) o.depth = spec.wrn_depth();
  if (spec.wrn_width() > 0) o.width = spec.wrn_width();
  if (o.depth < 10 || (o.depth - 4) % 6 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.model.wrn_depth: got ", o.depth, ", must be >= 10 with (depth - 4) % 6 == 0"));
  }
  if (o.width < 1 || o.width > 20) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.model.wrn_width: got ", o.width, ", must be 1..20"));
  }
  if (inputs.example_shape.size() != 3) {
    return absl::InvalidArgumentError("spec.model.arch: wrn needs image data [C, H, W]");
  }
  o.in_channels = inputs.in_channels();
  o.num_classes = inputs.num_classes;
  try {
    return ModelPtr(std::make_shared<Wrn>(o));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("building wrn: ", e.what_without_backtrace()));
  }
}

PENDULUM_REGISTER_MODEL(wrn, MakeWrn);

}  // namespace pendulum::train
