#include "worker/train/core/optimizer_factory.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pendulum::train {
namespace {

using torch::optim::OptimizerParamGroup;

// One group per non-empty list; the no-decay group carries its own options
// (a copy of the defaults with weight_decay 0).
template <typename Options>
std::vector<OptimizerParamGroup> Groups(const ParamGroups& p, const Options& defaults) {
  std::vector<OptimizerParamGroup> groups;
  if (!p.decay.empty()) groups.emplace_back(p.decay, std::make_unique<Options>(defaults));
  if (!p.no_decay.empty()) {
    auto no_decay = std::make_unique<Options>(defaults);
    no_decay->weight_decay(0.0);
    groups.emplace_back(p.no_decay, std::move(no_decay));
  }
  return groups;
}

absl::Status CheckAdamFamily(const v1::OptimizerSpec& s) {
  if (s.has_beta1() && (s.beta1() < 0 || s.beta1() >= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("spec.optimizer.beta1: got ", s.beta1(), ", must be in [0, 1)"));
  }
  if (s.has_beta2() && (s.beta2() < 0 || s.beta2() >= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("spec.optimizer.beta2: got ", s.beta2(), ", must be in [0, 1)"));
  }
  if (s.has_eps() && s.eps() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("spec.optimizer.eps: got ", s.eps(), ", must be > 0"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeSgd(const v1::OptimizerSpec& s,
                                                                 const ParamGroups& p) {
  if (s.nesterov() && s.momentum() <= 0) {
    return absl::InvalidArgumentError("spec.optimizer.nesterov: needs optimizer.momentum > 0");
  }
  auto o = torch::optim::SGDOptions(s.lr()).momentum(s.momentum()).nesterov(s.nesterov()).weight_decay(
      s.weight_decay());
  return std::unique_ptr<torch::optim::Optimizer>(new torch::optim::SGD(Groups(p, o), o));
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeAdam(const v1::OptimizerSpec& s,
                                                                  const ParamGroups& p) {
  if (auto st = CheckAdamFamily(s); !st.ok()) return st;
  // torch::optim::Adam's weight_decay is L2 added to the gradient (not decoupled).
  auto o = torch::optim::AdamOptions(s.lr())
               .betas({s.has_beta1() ? s.beta1() : 0.9, s.has_beta2() ? s.beta2() : 0.999})
               .eps(s.has_eps() ? s.eps() : 1e-8)
               .weight_decay(s.weight_decay());
  return std::unique_ptr<torch::optim::Optimizer>(new torch::optim::Adam(Groups(p, o), o));
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeAdamW(const v1::OptimizerSpec& s,
                                                                   const ParamGroups& p) {
  if (auto st = CheckAdamFamily(s); !st.ok()) return st;
  // Decoupled decay (Loshchilov & Hutter). Note torch's AdamW default decay is
  // 0.01; the spec's default is 0, and we pass the spec value explicitly.
  auto o = torch::optim::AdamWOptions(s.lr())
               .betas({s.has_beta1() ? s.beta1() : 0.9, s.has_beta2() ? s.beta2() : 0.999})
               .eps(s.has_eps() ? s.eps() : 1e-8)
               .weight_decay(s.weight_decay());
  return std::unique_ptr<torch::optim::Optimizer>(new torch::optim::AdamW(Groups(p, o), o));
}

}  // namespace

PENDULUM_REGISTER_OPTIMIZER(sgd, MakeSgd);
PENDULUM_REGISTER_OPTIMIZER(adam, MakeAdam);
PENDULUM_REGISTER_OPTIMIZER(adamw, MakeAdamW);

ParamGroups SplitParameters(const v1::OptimizerSpec& spec, const Model& model,
                            const TrainingMethod* method) {
  ParamGroups groups;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    const torch::Tensor& p = item.value();
    if (!p.requires_grad() || (method != nullptr && method->Frozen(name, p))) continue;
    const bool no_decay = (p.dim() <= 1 && !spec.decay_1d()) ||
                          (method != nullptr && method->ExcludeFromWeightDecay(name, p));
    (no_decay ? groups.no_decay : groups.decay).push_back(p);
    (no_decay ? groups.no_decay_names : groups.decay_names).push_back(name);
  }
  return groups;
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeOptimizer(
    const v1::OptimizerSpec& spec, const Model& model, const TrainingMethod* method) {
  if (spec.lr() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("spec.optimizer.lr: got ", spec.lr(), ", must be > 0"));
  }
  const OptimizerFactory* factory = OptimizerRegistry::Global().Find(spec.type());
  if (factory == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.optimizer.type: '", spec.type(), "' is not built in this version (built: ",
                     absl::StrJoin(OptimizerRegistry::Global().Names(), ", "), ")"));
  }
  ParamGroups groups = SplitParameters(spec, model, method);
  if (groups.decay.empty() && groups.no_decay.empty()) {
    return absl::FailedPreconditionError("the model has no trainable parameters");
  }
  try {
    return (*factory)(spec, groups);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.optimizer: ", spec.type(), " rejected its options: ", e.what_without_backtrace()));
  }
}

void SetLearningRate(torch::optim::Optimizer* optimizer, double lr) {
  for (auto& group : optimizer->param_groups()) group.options().set_lr(lr);
}

}  // namespace pendulum::train
