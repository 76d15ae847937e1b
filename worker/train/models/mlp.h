#pragma once
// Mlp: a multi-layer perceptron over flattened inputs (model.arch "mlp").
// Hidden widths from spec.model.hidden (default [256]), activation relu|gelu,
// optional dropout before the classifier, classifier bias per model.fc_bias.
// Layers are named fc0, fc1, ..., head (parameter names "fc0.weight", ...).

#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/models/model.h"

namespace pendulum::train {

struct MlpOptions {
  int64_t in_features = 784;
  std::vector<int64_t> hidden = {256};
  int64_t num_classes = 10;
  bool gelu = false;
  double dropout = 0.0;
  bool fc_bias = true;
};

class Mlp : public Model {
 public:
  explicit Mlp(const MlpOptions& options);
  ModelOutput Forward(const torch::Tensor& x) override;

 private:
  MlpOptions options_;
  std::vector<torch::nn::Linear> hidden_;
  torch::nn::Linear head_{nullptr};
};

// Builds an Mlp from the spec; INVALID_ARGUMENT names bad fields.
absl::StatusOr<ModelPtr> MakeMlp(const v1::ModelSpec& spec, const ModelInputs& inputs);

}  // namespace pendulum::train
