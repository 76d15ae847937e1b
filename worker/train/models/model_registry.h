#pragma once
// ModelRegistry: maps RunSpec model.arch names ("mlp", "vit", "resnet32", ...)
// to builders. Each architecture file registers itself at static-init time:
//
//   // in worker/train/models/vit.cc
//   PENDULUM_REGISTER_MODEL(vit, [](const v1::ModelSpec& spec, const ModelInputs& in)
//                                    -> absl::StatusOr<ModelPtr> { ... });
//
// (the first argument is the arch name as written in the spec, unquoted).
// train_core links train_models as a whole archive so these registrations are
// never dropped by the linker. A builder validates the spec fields it uses and
// returns INVALID_ARGUMENT naming them ("spec.model.hidden: ..."). It must not
// throw: catch c10::Error inside. Registration happens before main(); lookups
// afterwards are read-only and thread-safe.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/core/name_registry.h"
#include "worker/train/models/model.h"

namespace pendulum::train {

using ModelBuilder =
    std::function<absl::StatusOr<ModelPtr>(const v1::ModelSpec& spec, const ModelInputs& inputs)>;

using ModelRegistry = NameRegistry<ModelBuilder>;

}  // namespace pendulum::train

#define PENDULUM_REGISTER_MODEL(arch, ...) PENDULUM_REGISTER_IN(ModelRegistry, arch, __VA_ARGS__)
