// Registers "adamp" and "sgdp" with the trainer's OptimizerRegistry, so every
// method can select them through spec.optimizer.type. One torch param group
// per non-empty list of ParamGroups: decay (spec.weight_decay) first, then
// no_decay (weight decay 0).

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/optim/optimizer.h>

#include "worker/train/core/optimizer_registry.h"
#include "worker/train/optim/projected_optimizer.h"
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
  auto optimizer = MakeProjectedOptimizer(spec, std::move(groups));
  if (!optimizer.ok()) return optimizer.status();
  // Parameter names for the §3.5 scalars, one list per group built above.
  std::vector<std::vector<std::string>> names;
  if (!params.decay.empty()) names.push_back(params.decay_names);
  if (!params.no_decay.empty()) names.push_back(params.no_decay_names);
  if (auto* projected = dynamic_cast<ProjectedOptimizer*>(optimizer->get())) {
    projected->set_metric_names(spec.type(), std::move(names));
  }
  return optimizer;
}

}  // namespace

PENDULUM_REGISTER_OPTIMIZER(adamp, BuildProjected);
PENDULUM_REGISTER_OPTIMIZER(sgdp, BuildProjected);

}  // namespace pendulum::train::optim
