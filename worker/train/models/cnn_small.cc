#include "worker/train/models/cnn_small.h"

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "worker/train/models/model_registry.h"

namespace pendulum::train {

CnnSmall::CnnSmall(const CnnSmallOptions& o) : Model("cnn_small"), options_(o) {
  // Convs feeding BN need no bias (BN's shift replaces it).
  conv1_ = register_module(
      "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in_channels, o.channels1, 3)
                                     .padding(1)
                                     .bias(!o.batch_norm)));
  conv2_ = register_module(
      "conv2", torch::nn::Conv2d(
                   torch::nn::Conv2dOptions(o.channels1, o.channels2, 3).padding(1).bias(!o.batch_norm)));
  if (o.batch_norm) {
    bn1_ = register_module("bn1", torch::nn::BatchNorm2d(o.channels1));
    bn2_ = register_module("bn2", torch::nn::BatchNorm2d(o.channels2));
  }
  const int64_t side = o.image_size / 4;  // two 2x2 pools (floor)
  int64_t features = o.channels2 * side * side;
  if (o.hidden > 0) {
    fc_ = register_module("fc", torch::nn::Linear(features, o.hidden));
    features = o.hidden;
  }
  head_ = register_module(
      "head", torch::nn::Linear(torch::nn::LinearOptions(features, o.num_classes).bias(o.fc_bias)));
}

ModelOutput CnnSmall::Forward(const torch::Tensor& x) {
  torch::Tensor h = conv1_->forward(x);
  if (bn1_) h = bn1_->forward(h);
  h = at::max_pool2d(at::relu(h), {2, 2});
  h = conv2_->forward(h);
  if (bn2_) h = bn2_->forward(h);
  h = at::max_pool2d(at::relu(h), {2, 2});
  h = h.flatten(1);
  if (fc_) h = at::relu(fc_->forward(h));
  ModelOutput out;
  out.extra["features"] = h;
  if (options_.dropout > 0) h = at::dropout(h, options_.dropout, is_training());
  out.logits = head_->forward(h);
  return out;
}

absl::StatusOr<ModelPtr> MakeCnnSmall(const v1::ModelSpec& spec, const ModelInputs& inputs) {
  if (inputs.example_shape.size() != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.model.arch: cnn_small needs image examples [C, H, W], the data has ",
        inputs.example_shape.size(), " dims (for synthetic data set data.synthetic.shape: [1, 28, 28])"));
  }
  CnnSmallOptions o;
  o.in_channels = inputs.example_shape[0];
  o.image_size = inputs.example_shape[1];
  if (inputs.example_shape[1] != inputs.example_shape[2] || o.image_size < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.model.arch: cnn_small needs square images of side >= 4, got ",
                     inputs.example_shape[1], "x", inputs.example_shape[2]));
  }
  o.num_classes = inputs.num_classes;
  if (spec.hidden_size() > 1) {
    return absl::InvalidArgumentError("spec.model.hidden: cnn_small takes at most one hidden FC width");
  }
  if (spec.hidden_size() == 1) o.hidden = spec.hidden(0);
  o.fc_bias = !spec.has_fc_bias() || spec.fc_bias();
  o.dropout = spec.dropout();
  return ModelPtr(std::make_shared<CnnSmall>(o));
}

PENDULUM_REGISTER_MODEL(cnn_small, MakeCnnSmall);

}  // namespace pendulum::train
