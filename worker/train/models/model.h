#pragma once
// Model: the base class of every classifier network pendulum-train builds
// (mlp, cnn_small, vit*, resnet*, wrn*, vgg*, ...). The training loop and every
// TrainingMethod talk to networks only through this interface, so a method can
// train any architecture. Not thread-safe (a torch module); owned through
// ModelPtr (shared_ptr, as torch modules are).
//
// Writing a new architecture: derive from Model, register parameters in the
// constructor (torch's register_module/register_parameter), implement Forward,
// and register a builder in its .cc with PENDULUM_REGISTER_MODEL (see
// model_registry.h). Nothing else needs to change.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

namespace pendulum::train {

// What a network's forward pass returns.
struct ModelOutput {
  // Class logits [N, num_classes]. Always defined.
  torch::Tensor logits;
  // Optional extra outputs, by name. Conventions:
  //   "dist_logits": DeiT distillation-token head [N, num_classes]
  //   "features":    penultimate features [N, D] (incremental learning, NME)
  std::map<std::string, torch::Tensor> extra;
};

// The shape of the data a model is built for (from the dataset, not the spec).
struct ModelInputs {
  int64_t num_classes = 10;
  // Example shape without the batch dimension, e.g. {1, 28, 28} or {784}.
  std::vector<int64_t> example_shape;
  int64_t in_channels() const { return example_shape.size() >= 3 ? example_shape[0] : 1; }
  int64_t image_size() const { return example_shape.size() >= 3 ? example_shape[1] : 0; }
  int64_t flat_size() const {
    int64_t n = 1;
    for (int64_t d : example_shape) n *= d;
    return n;
  }
};

class Model : public torch::nn::Module {
 public:
  explicit Model(std::string arch) : torch::nn::Module(arch), arch_(std::move(arch)) {}
  ~Model() override = default;

  // Full forward pass. x is [N, ...example_shape] float on the model's device.
  virtual ModelOutput Forward(const torch::Tensor& x) = 0;

  // Convenience: logits only.
  torch::Tensor forward(const torch::Tensor& x) { return Forward(x).logits; }

  const std::string& arch() const { return arch_; }

 private:
  std::string arch_;
};

using ModelPtr = std::shared_ptr<Model>;

}  // namespace pendulum::train
