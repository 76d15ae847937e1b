#pragma once
// OptimizerRegistry: optimizer.type → factory. sgd, adam and adamw are built
// into train_core (optimizer_factory.cc); the optim library registers adamp
// and sgdp in its own .cc:
//
//   PENDULUM_REGISTER_OPTIMIZER(adamp, [](const v1::OptimizerSpec& spec,
//                                         const ParamGroups& params)
//       -> absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> { ... });
//
// ParamGroups splits the trainable parameters: `decay` gets spec.weight_decay,
// `no_decay` must get weight decay 0 (1-D parameters unless
// optimizer.decay_1d, plus what the method excludes). A factory makes one
// torch param group per non-empty list, in that order (decay first). The loop
// sets the learning rate every step through each group's options().set_lr();
// factories use spec.lr as the initial value. Options left unset in the spec
// (proto3 optional) take the paper/torch defaults. Invalid options are
// INVALID_ARGUMENT naming "spec.optimizer.<field>". Registration before
// main(); read-only after.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/core/name_registry.h"

namespace pendulum::train {

struct ParamGroups {
  std::vector<torch::Tensor> decay;
  std::vector<torch::Tensor> no_decay;
  std::vector<std::string> decay_names;     // parameter names, parallel to decay
  std::vector<std::string> no_decay_names;  // parallel to no_decay
};

// Optional interface of an optimizer that reports its own metrics (AdamP and
// SGDP: methods.md §3.5). The loop calls PrepareMetricStep() before the
// optimizer step whose metrics it will emit (detailed stats cost a copy of
// each parameter, so they are collected on those steps only) and
// AppendMetricScalars() when it emits them. Training thread only.
class OptimizerMetrics {
 public:
  virtual ~OptimizerMetrics() = default;
  virtual void PrepareMetricStep() = 0;
  virtual void AppendMetricScalars(std::map<std::string, double>* values) = 0;
};

using OptimizerFactory = std::function<absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>>(
    const v1::OptimizerSpec& spec, const ParamGroups& params)>;

using OptimizerRegistry = NameRegistry<OptimizerFactory>;

}  // namespace pendulum::train

#define PENDULUM_REGISTER_OPTIMIZER(type, ...) PENDULUM_REGISTER_IN(OptimizerRegistry, type, __VA_ARGS__)
