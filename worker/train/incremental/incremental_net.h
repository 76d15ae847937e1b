#pragma once
// IncrementalNet: any Model that reports penultimate features
// (ModelOutput::extra["features"]) plus our own GrowableLinear head "fc" that
// grows by classes as stages arrive. The backbone's own classifier is not
// used (its parameters get no gradient, so optimizers skip them).
// Output k of fc is the k-th class of the scenario's class order.
// Single-threaded like any torch module.

#include <cstdint>
#include <memory>

#include <vector>

#include "absl/status/statusor.h"
#include "worker/train/models/model.h"
#include "worker/train/models/resnet_head.h"

namespace pendulum::train::incremental {

class IncrementalNet : public Model {
 public:
  // feature_dim must match the backbone's features (see ProbeFeatureDim).
  IncrementalNet(ModelPtr backbone, int64_t feature_dim, int64_t num_classes, bool fc_bias);

  // logits = fc(features); extra["features"] = the backbone's features, flattened to [B, D].
  ModelOutput Forward(const torch::Tensor& x) override;

  models::GrowableLinear& fc() { return fc_; }
  const ModelPtr& backbone() const { return backbone_; }

 private:
  ModelPtr backbone_;
  models::GrowableLinear fc_{nullptr};
};

// Runs one all-zero example through `backbone` in eval mode and returns its
// feature width; FAILED_PRECONDITION naming the arch when it has none.
absl::StatusOr<int64_t> ProbeFeatureDim(Model& backbone, const std::vector<int64_t>& example_shape);

}  // namespace pendulum::train::incremental
