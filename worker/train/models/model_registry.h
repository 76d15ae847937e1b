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

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/models/model.h"

namespace pendulum::train {

using ModelBuilder =
    std::function<absl::StatusOr<ModelPtr>(const v1::ModelSpec& spec, const ModelInputs& inputs)>;

class ModelRegistry {
 public:
  // Header-only on purpose: method/model libraries register without linking
  // train_core (which links them), so there is no static-library cycle.
  static ModelRegistry& Global() {
    static ModelRegistry registry;
    return registry;
  }
  // Returns false (and keeps the first) if `name` is already registered.
  bool Register(const std::string& name, ModelBuilder builder) {
    if (Find(name) != nullptr) return false;
    entries_.emplace_back(name, std::move(builder));
    return true;
  }
  // nullptr when not registered.
  const ModelBuilder* Find(const std::string& name) const {
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
  std::vector<std::pair<std::string, ModelBuilder>> entries_;
};

}  // namespace pendulum::train

#define PENDULUM_MODEL_CONCAT_INNER_(a, b) a##b
#define PENDULUM_MODEL_CONCAT_(a, b) PENDULUM_MODEL_CONCAT_INNER_(a, b)
#define PENDULUM_REGISTER_MODEL(arch, ...)                                                    \
  static const bool PENDULUM_MODEL_CONCAT_(pendulum_model_registered_, arch) [[maybe_unused]] = \
      ::pendulum::train::ModelRegistry::Global().Register(#arch, __VA_ARGS__)
