#pragma once
// BlockMlp (model.arch "block_mlp"): the block-diagonal modular MLP of
// methods.md §6.3 for the Interaction Basis checks. Widths: input = the
// example size, hidden = spec.model.hidden (default [8, 8, 8, 8]), output =
// classes; ReLU between layers. Every weight is initialised
// blockdiag(2·N(0,1), 2·N(0,1)) over 2 blocks (rows and columns split in
// halves; the config's "variance" 2 used as a multiplier), biases 0. Training
// does not keep the blocks (the checks use the initialised network).
// Layers are named fc0, fc1, ..., head like Mlp.

#include <vector>

#include <torch/nn/modules/linear.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/models/model.h"

namespace pendulum::train {

struct BlockMlpOptions {
  int64_t in_features = 8;
  std::vector<int64_t> hidden = {8, 8, 8, 8};
  int64_t num_classes = 8;
  int64_t num_blocks = 2;
  double scale = 2.0;
};

class BlockMlp : public Model {
 public:
  explicit BlockMlp(const BlockMlpOptions& options);
  ModelOutput Forward(const torch::Tensor& x) override;

 private:
  BlockMlpOptions options_;
  std::vector<torch::nn::Linear> layers_;  // hidden layers then the head
};

absl::StatusOr<ModelPtr> MakeBlockMlp(const v1::ModelSpec& spec, const ModelInputs& inputs);

}  // namespace pendulum::train
