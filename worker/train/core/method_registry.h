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

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "worker/train/core/training_method.h"

namespace pendulum::train {

class MethodRegistry {
 public:
  // Header-only on purpose: method/model libraries register without linking
  // train_core (which links them), so there is no static-library cycle.
  static MethodRegistry& Global() {
    static MethodRegistry registry;
    return registry;
  }
  // Returns false (and keeps the first) if `name` is already registered.
  bool Register(const std::string& name, MethodFactory factory) {
    if (Find(name) != nullptr) return false;
    entries_.emplace_back(name, std::move(factory));
    return true;
  }
  // nullptr when not registered.
  const MethodFactory* Find(const std::string& name) const {
    for (const auto& [n, f] : entries_) {
      if (n == name) return &f;
    }
    return nullptr;
  }
  std::vector<std::string> Names() const {  // sorted
    std::vector<std::string> names;
    for (const auto& e : entries_) names.push_back(e.first);
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::vector<std::pair<std::string, MethodFactory>> entries_;
};

// Builds the method spec.method names (PlainMethod when unset/plain).
absl::StatusOr<std::unique_ptr<TrainingMethod>> MakeMethod(const TrainContext& ctx);

}  // namespace pendulum::train

#define PENDULUM_METHOD_CONCAT_INNER_(a, b) a##b
#define PENDULUM_METHOD_CONCAT_(a, b) PENDULUM_METHOD_CONCAT_INNER_(a, b)
#define PENDULUM_REGISTER_METHOD(name, ...)                                                      \
  static const bool PENDULUM_METHOD_CONCAT_(pendulum_method_registered_, name) [[maybe_unused]] = \
      ::pendulum::train::MethodRegistry::Global().Register(#name, __VA_ARGS__)
