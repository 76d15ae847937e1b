#pragma once
// The classifier side of the ResNets (and of any network used for
// class-incremental learning): GrowableLinear, a linear layer whose output
// rows can be appended class by class (optionally without bias), and
// FeatureClassifier, a module exposing its penultimate features and logits.
// FeatureClassifier is a pendulum::train::Model. Single-threaded like any torch module.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "worker/train/models/model.h"

namespace pendulum::train::models {

// y = x Wᵀ (+ b). W is [out, in]. Initialised as PyCIL's SimpleLinear:
// kaiming-uniform with gain 1 (bound √(3/in)), bias 0.
class GrowableLinearImpl : public torch::nn::Cloneable<GrowableLinearImpl> {
 public:
  GrowableLinearImpl(int64_t in_features, int64_t out_features, bool bias);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  // Appends rows so the layer has `out_features` outputs; old rows (and bias
  // entries) are copied, new ones freshly initialised. The weight and bias
  // become NEW tensors: rebuild any optimizer that held the old ones.
  // REQUIRES: out_features >= current out_features.
  void Grow(int64_t out_features);

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  bool has_bias() const { return has_bias_; }

  torch::Tensor weight;
  torch::Tensor bias;  // undefined without bias

 private:
  int64_t in_features_;
  int64_t out_features_;
  bool has_bias_;
};
TORCH_MODULE(GrowableLinear);

// A network = feature extractor + GrowableLinear head ("fc"), as a Model:
// Forward(x) gives logits = fc(features(x)) and extra["features"].
// Subclasses register their layers and call InitClassifier() in their constructor.
class FeatureClassifier : public Model {
 public:
  explicit FeatureClassifier(std::string arch) : Model(std::move(arch)) {}
  // Penultimate features [B, feature_dim()] (post-ReLU, pooled).
  virtual torch::Tensor features(const torch::Tensor& x) = 0;
  ModelOutput Forward(const torch::Tensor& x) override;

  int64_t feature_dim() const { return fc_->in_features(); }
  int64_t num_classes() const { return fc_->out_features(); }
  GrowableLinear& fc() { return fc_; }
  void GrowClasses(int64_t total_classes) { fc_->Grow(total_classes); }

 protected:
  void InitClassifier(int64_t feature_dim, int64_t num_classes, bool bias);

 private:
  GrowableLinear fc_{nullptr};
};

// Copies every parameter and buffer of `src` into `dst` (same architecture and
// sizes; e.g. the frozen KD teacher). Throws c10::Error on a mismatch.
void CopyModuleState(torch::nn::Module& src, torch::nn::Module& dst);

}  // namespace pendulum::train::models
