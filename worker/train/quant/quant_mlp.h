#pragma once
// Quantized twin of models/mlp.h (model.arch "mlp") for OFQ runs: the same
// layer names (fc0, fc1, ..., head) and parameter names, so a full-precision
// Mlp checkpoint loads into it by name. fc0 and head use 8-bit LSQ weights
// (like the ViT patch embedding and heads); the hidden fc1.. layers use the
// run's weight quantizer and bits. Inputs of every layer are quantized per
// tensor at act_bits (unsigned after ReLU) when act_bits > 0.
// Not thread-safe (a torch module).

#include <vector>

#include <torch/nn/modules/container/modulelist.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/method_ofq.pb.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/models/model.h"
#include "worker/train/quant/quant_linear.h"

namespace pendulum::train::quant {

struct QuantMlpOptions {
  int64_t in_features = 784;
  std::vector<int64_t> hidden = {256};
  int64_t num_classes = 10;
  bool gelu = false;
  bool fc_bias = true;
  WeightQuant weight_quant = WeightQuant::kStatsQ;
  int weight_bits = 2;
  int act_bits = 0;
  int embed_head_bits = 8;
  // false: the full-precision network with the same names (pretraining).
  bool quantize = true;
};

class QuantMlp : public Model {
 public:
  explicit QuantMlp(const QuantMlpOptions& options);
  ModelOutput Forward(const torch::Tensor& x) override;

 private:
  QuantMlpOptions options_;
  std::vector<QuantLinear> hidden_;
  QuantLinear head_{nullptr};
};

absl::StatusOr<std::shared_ptr<QuantMlp>> MakeQuantMlp(const v1::ModelSpec& spec, const ModelInputs& inputs,
                                                       const v1::OfqMethod& ofq);

}  // namespace pendulum::train::quant
