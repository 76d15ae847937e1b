#pragma once
// CnnSmall: two 3x3 conv blocks (conv → [BN] → relu → 2x2 max-pool, 32 and 64
// channels) and a fully connected classifier (model.arch "cnn_small"). For
// image inputs [C, H, W] with H, W >= 4. model.hidden[0] (optional) adds one
// hidden FC layer of that width; model.fc_bias controls the classifier bias.
// Batch norm is on by default (CnnSmallOptions::batch_norm).

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/models/model.h"

namespace pendulum::train {

struct CnnSmallOptions {
  int64_t in_channels = 1;
  int64_t image_size = 28;
  int64_t num_classes = 10;
  int64_t channels1 = 32;
  int64_t channels2 = 64;
  int64_t hidden = 0;  // 0 = conv features go straight to the classifier
  bool batch_norm = true;
  bool fc_bias = true;
  double dropout = 0.0;
};

class CnnSmall : public Model {
 public:
  explicit CnnSmall(const CnnSmallOptions& options);
  ModelOutput Forward(const torch::Tensor& x) override;

 private:
  CnnSmallOptions options_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Linear fc_{nullptr}, head_{nullptr};
};

absl::StatusOr<ModelPtr> MakeCnnSmall(const v1::ModelSpec& spec, const ModelInputs& inputs);

}  // namespace pendulum::train
