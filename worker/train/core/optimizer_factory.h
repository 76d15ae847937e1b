#pragma once
// MakeOptimizer: builds the optimizer a spec names (sgd, adam, adamw built in;
// adamp, sgdp and others through OptimizerRegistry) over a model's trainable
// parameters, split into decay / no-decay groups (see optimizer_registry.h).
// SetLearningRate applies the schedule to every group. Training thread only.

#include <memory>

#include <torch/optim/optimizer.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/core/optimizer_registry.h"
#include "worker/train/core/training_method.h"

namespace pendulum::train {

// Splits model's parameters: frozen (method->Frozen or requires_grad false)
// are left out; 1-D tensors (unless spec.decay_1d) and
// method->ExcludeFromWeightDecay go to no_decay. `method` may be null.
ParamGroups SplitParameters(const v1::OptimizerSpec& spec, const Model& model,
                            const TrainingMethod* method);

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeOptimizer(
    const v1::OptimizerSpec& spec, const Model& model, const TrainingMethod* method);

void SetLearningRate(torch::optim::Optimizer* optimizer, double lr);

}  // namespace pendulum::train
