#pragma once
// NameRegistry<Factory>: the one registry behind ModelRegistry (model.arch →
// builder), MethodRegistry (method oneof name → TrainingMethod factory) and
// OptimizerRegistry (optimizer.type → optimizer factory). Each library
// registers its names at static-init time through a PENDULUM_REGISTER_*
// macro; lookups afterwards are read-only and thread-safe.
//
// Header-only on purpose: method/model libraries register without linking
// train_core (which links them), so there is no static-library cycle. Each
// Factory type gets its own Global() instance (a function-local static of the
// template instantiation), so the three registries never mix.

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace pendulum::train {

template <typename Factory>
class NameRegistry {
 public:
  static NameRegistry& Global() {
    static NameRegistry registry;
    return registry;
  }
  // Returns false (and keeps the first) if `name` is already registered.
  bool Register(const std::string& name, Factory factory) {
    if (Find(name) != nullptr) return false;
    entries_.emplace_back(name, std::move(factory));
    return true;
  }
  // nullptr when not registered.
  const Factory* Find(const std::string& name) const {
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
  std::vector<std::pair<std::string, Factory>> entries_;
};

}  // namespace pendulum::train

// PENDULUM_REGISTER_IN(Registry, name, factory): registers `factory` under the
// unquoted `name` before main(). One registration per name per translation unit.
#define PENDULUM_REGISTRY_CONCAT_INNER_(a, b) a##b
#define PENDULUM_REGISTRY_CONCAT_(a, b) PENDULUM_REGISTRY_CONCAT_INNER_(a, b)
#define PENDULUM_REGISTER_IN(Registry, name, ...)                                            \
  static const bool PENDULUM_REGISTRY_CONCAT_(pendulum_registered_##Registry##_, name)       \
      [[maybe_unused]] = ::pendulum::train::Registry::Global().Register(#name, __VA_ARGS__)
