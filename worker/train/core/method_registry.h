#pragma once
// MethodRegistry: maps the RunSpec MethodSpec oneof field name ("ofq",
// "incremental", "compander", "tscnc", "interaction_basis") to a factory of
// TrainingMethod. "plain" (and an unset method) is built in. A method library
// registers at static-init time in one of its .cc files:
//
//   PENDULUM_REGISTER_METHOD(ofq, [](const TrainContext& ctx)
//       -> absl::StatusOr<std::unique_ptr<TrainingMethod>> {
//     return std::make_unique<OfqMethod>(ctx.spec->method().ofq());
//   });
//
// train_core links every train_* library as a whole archive, so registrations
// are kept. A method named in a spec but not registered fails with
// "spec.method.<name>: not built in this version". Registration before main();
// read-only afterwards.

#include <functional>
#include <string>
#include <vector>

#include "worker/train/core/name_registry.h"
#include "worker/train/core/training_method.h"

namespace pendulum::train {

using MethodRegistry = NameRegistry<MethodFactory>;

// Builds the method spec.method names (PlainMethod when unset/plain).
absl::StatusOr<std::unique_ptr<TrainingMethod>> MakeMethod(const TrainContext& ctx);

}  // namespace pendulum::train

#define PENDULUM_REGISTER_METHOD(name, ...) PENDULUM_REGISTER_IN(MethodRegistry, name, __VA_ARGS__)
