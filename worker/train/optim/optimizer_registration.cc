// Registers "adamp" and "sgdp" with the trainer's OptimizerRegistry, so every
// method can select them through spec.optimizer.type. One torch param group
// per non-empty list of ParamGroups: decay (spec.weight_decay) first, then
// no_decay (weight decay 0).

#include <memory>
#include <utility>
#include <vector>

#include <torch/optim/optimizer.h>

#include "worker/train/core/optimizer_registry.h"
#include "worker/train/optim/projected_optimizer_factory.h"

namespace pendulum::train::optim {
namespace {

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> BuildProjected(const v1::OptimizerSpec& spec,
                                                                        const ParamGroups& params) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!params.decay.empty()) {
    auto options = MakeProjectedGroupOptions(spec, spec.weight_decay());
    if (!options.ok()) return options.status();
    groups.emplace_back(params.decay, std::move(*options));
  }
  if (!params.no_decay.empty()) {
    auto options = MakeProjectedGroupOptions(spec, 0.0);
    if (!options.ok()) return options.status();
    groups.emplace_back(params.no_decay, std::move(*options));
  }
  return MakeProjectedOptimizer(spec, std::move(groups));
}

}  // namespace

PENDULUM_REGISTER_OPTIMIZER(adamp, BuildProjected);
PENDULUM_REGISTER_OPTIMIZER(sgdp, BuildProjected);

}  // namespace pendulum::train::optim
