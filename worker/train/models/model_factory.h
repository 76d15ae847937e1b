#pragma once
// MakeModel: builds the network a RunSpec asks for, through ModelRegistry.
// An arch the spec language knows but this build does not contain fails with
// INVALID_ARGUMENT "spec.model.arch: 'x' is not built in this version (built: ...)".
// The caller seeds torch's default generator first (initialisation is drawn from it).
// spec.num_classes > 0 overrides inputs.num_classes.

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/models/model.h"

namespace pendulum::train {

absl::StatusOr<ModelPtr> MakeModel(const v1::ModelSpec& spec, const ModelInputs& inputs);

}  // namespace pendulum::train
