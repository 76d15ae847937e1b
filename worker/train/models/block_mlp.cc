#include "worker/train/models/block_mlp.h"

#include <string>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "worker/train/models/model_registry.h"

namespace pendulum::train {
namespace {

// Block b of n covers [b·n_total/blocks, (b+1)·n_total/blocks).
int64_t BlockStart(int64_t size, int64_t blocks, int64_t b) { return b * size / blocks; }

}  // namespace

BlockMlp::BlockMlp(const BlockMlpOptions& options) : Model("block_mlp"), options_(options) {
  std::vector<int64_t> widths = {options_.in_features};
  widths.insert(widths.end(), options_.hidden.begin(), options_.hidden.end());
  widths.push_back(options_.num_classes);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    const bool head = i + 2 == widths.size();
    auto lin = register_module(head ? std::string("head") : "fc" + std::to_string(i),
                               torch::nn::Linear(widths[i], widths[i + 1]));
    lin->weight.zero_();
    lin->bias.zero_();
    for (int64_t b = 0; b < options_.num_blocks; ++b) {
      const int64_t r0 = BlockStart(widths[i + 1], options_.num_blocks, b);
      const int64_t r1 = BlockStart(widths[i + 1], options_.num_blocks, b + 1);
      const int64_t c0 = BlockStart(widths[i], options_.num_blocks, b);
      const int64_t c1 = BlockStart(widths[i], options_.num_blocks, b + 1);
      lin->weight.slice(0, r0, r1).slice(1, c0, c1).copy_(
          options_.scale * at::randn({r1 - r0, c1 - c0}));
    }
    layers_.push_back(lin);
  }
}

ModelOutput BlockMlp::Forward(const torch::Tensor& x) {
  torch::Tensor h = x.reshape({x.size(0), -1});
  ModelOutput out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    h = layers_[i]->forward(h);
    if (i + 1 < layers_.size()) h = at::relu(h);
    if (i + 2 == layers_.size()) out.extra["features"] = h;
  }
  out.logits = h;
  return out;
}

absl::StatusOr<ModelPtr> MakeBlockMlp(const v1::ModelSpec& spec, const ModelInputs& inputs) {
  BlockMlpOptions o;
  o.in_features = inputs.flat_size();
  o.num_classes = inputs.num_classes;
  if (spec.hidden_size() > 0) o.hidden.assign(spec.hidden().begin(), spec.hidden().end());
  for (int i = 0; i < static_cast<int>(o.hidden.size()); ++i) {
    if (o.hidden[i] < o.num_blocks) {
      return absl::InvalidArgumentError(absl::StrCat("spec.model.hidden[", i, "]: got ", o.hidden[i],
                                                     ", block_mlp needs >= ", o.num_blocks));
    }
  }
  if (o.in_features < o.num_blocks || o.num_classes < o.num_blocks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.model: block_mlp needs >= ", o.num_blocks, " inputs and classes (got ", o.in_features,
        " and ", o.num_classes, ")"));
  }
  if (!spec.activation().empty() && spec.activation() != "relu") {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.model.activation: got '", spec.activation(), "', block_mlp allows: relu"));
  }
  return ModelPtr(std::make_shared<BlockMlp>(o));
}

PENDULUM_REGISTER_MODEL(block_mlp, MakeBlockMlp);

}  // namespace pendulum::train
