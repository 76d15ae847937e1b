#include "worker/train/models/vgg.h"

#include <string>

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "worker/train/models/model_registry.h"

namespace pendulum::train {

Vgg16::Vgg16(int64_t in_channels, int64_t num_classes) : Model("vgg16") {
  // 0 marks a max-pool.
  const int64_t cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
  int64_t in = in_channels;
  for (int64_t c : cfg) {
    if (c == 0) {
      pool_after_.back() = true;
      continue;
    }
    const std::string i = std::to_string(convs_.size());
    convs_.push_back(register_module(
        "conv" + i, torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c, 3).padding(1).bias(false))));
    bns_.push_back(register_module("bn" + i, torch::nn::BatchNorm2d(c)));
    pool_after_.push_back(false);
    in = c;
  }
  head_ = register_module("head", torch::nn::Linear(in, num_classes));
}

ModelOutput Vgg16::Forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (size_t i = 0; i < convs_.size(); ++i) {
    h = at::relu(bns_[i]->forward(convs_[i]->forward(h)));
    if (pool_after_[i] && h.size(2) >= 2 && h.size(3) >= 2) h = at::max_pool2d(h, {2, 2});
  }
  h = at::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
  ModelOutput out;
  out.extra["features"] = h;
  out.logits = head_->forward(h);
  return out;
}

absl::StatusOr<ModelPtr> MakeVgg16(const v1::ModelSpec& spec, const ModelInputs& inputs) {
  if (inputs.example_shape.size() != 3) {
    return absl::InvalidArgumentError("spec.model.arch: vgg16 needs image data [C, H, W]");
  }
  try {
    return ModelPtr(std::make_shared<Vgg16>(inputs.in_channels(), inputs.num_classes));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("building vgg16: ", e.what_without_backtrace()));
  }
}

PENDULUM_REGISTER_MODEL(vgg16, MakeVgg16);

}  // namespace pendulum::train
