#pragma once
// Builds AdamP or SGDP from a RunSpec's OptimizerSpec (type "adamp" / "sgdp"),
// for the trainer's optimizer factory: sgd/adam/adamw are torch's own, these two
// are ours. Pure; returns INVALID_ARGUMENT naming the field for bad values
// (e.g. "spec.optimizer.delta: got 0, must be in (0, 1)") and never throws.
// Defaults follow methods.md §3.2/§3.3 when optional fields are unset.
//
//   std::vector<torch::optim::OptimizerParamGroup> groups = ...;  // e.g. decay / no-decay
//   PENDULUM_ASSIGN_OR_RETURN(auto opt, MakeProjectedOptimizer(spec.optimizer(), std::move(groups)));

#include <memory>
#include <string_view>
#include <vector>

#include <torch/optim/optimizer.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"

namespace pendulum::train::optim {

// True for the optimizer types this library provides ("adamp", "sgdp").
bool IsProjectedOptimizerType(std::string_view type);

// Param groups without options get the spec's values; a group that carries its
// own options must already hold AdamPOptions/SGDPOptions of the right type
// (use MakeProjectedGroupOptions to build them, e.g. with weight_decay 0).
absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeProjectedOptimizer(
    const pendulum::v1::OptimizerSpec& spec, std::vector<torch::optim::OptimizerParamGroup> groups);

// The per-group options the spec describes, with weight_decay overridden
// (for no-decay groups of 1-D parameters).
absl::StatusOr<std::unique_ptr<torch::optim::OptimizerOptions>> MakeProjectedGroupOptions(
    const pendulum::v1::OptimizerSpec& spec, double weight_decay);

}  // namespace pendulum::train::optim
