#include "worker/train/optim/projected_optimizer_factory.h"

#include <string>
#include <utility>

#include <c10/util/Exception.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/train/optim/adamp.h"
#include "worker/train/optim/sgdp.h"

namespace pendulum::train::optim {
namespace {

// Every bad field, not just the first (style.md §2).
absl::Status CheckSpec(const pendulum::v1::OptimizerSpec& spec) {
  std::vector<std::string> errors;
  if (!IsProjectedOptimizerType(spec.type())) {
    errors.push_back(absl::StrCat("spec.optimizer.type: got '", spec.type(), "', must be one of: adamp, sgdp"));
  }
  if (!(spec.lr() > 0)) errors.push_back(absl::StrCat("spec.optimizer.lr: got ", spec.lr(), ", must be > 0"));
  if (spec.weight_decay() < 0) {
    errors.push_back(absl::StrCat("spec.optimizer.weight_decay: got ", spec.weight_decay(), ", must be >= 0"));
  }
  if (spec.has_delta() && !(spec.delta() > 0 && spec.delta() < 1)) {
    errors.push_back(absl::StrCat("spec.optimizer.delta: got ", spec.delta(), ", must be in (0, 1)"));
  }
  if (spec.has_wd_ratio() && !(spec.wd_ratio() >= 0 && spec.wd_ratio() <= 1)) {
    errors.push_back(absl::StrCat("spec.optimizer.wd_ratio: got ", spec.wd_ratio(), ", must be in [0, 1]"));
  }
  if (spec.has_eps() && !(spec.eps() > 0)) {
    errors.push_back(absl::StrCat("spec.optimizer.eps: got ", spec.eps(), ", must be > 0"));
  }
  if (spec.type() == "sgdp" && !(spec.momentum() >= 0 && spec.momentum() < 1)) {
    errors.push_back(absl::StrCat("spec.optimizer.momentum: got ", spec.momentum(), ", must be in [0, 1)"));
  }
  if (spec.type() == "adamp") {
    if (spec.has_beta1() && !(spec.beta1() >= 0 && spec.beta1() < 1)) {
      errors.push_back(absl::StrCat("spec.optimizer.beta1: got ", spec.beta1(), ", must be in [0, 1)"));
    }
    if (spec.has_beta2() && !(spec.beta2() >= 0 && spec.beta2() < 1)) {
      errors.push_back(absl::StrCat("spec.optimizer.beta2: got ", spec.beta2(), ", must be in [0, 1)"));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

AdamPOptions ToAdamP(const pendulum::v1::OptimizerSpec& spec, double weight_decay) {
  AdamPOptions o(spec.lr());
  o.betas(std::make_tuple(spec.has_beta1() ? spec.beta1() : 0.9, spec.has_beta2() ? spec.beta2() : 0.999));
  o.eps(spec.has_eps() ? spec.eps() : 1e-8);
  o.weight_decay(weight_decay);
  o.delta(spec.has_delta() ? spec.delta() : 0.1);
  o.wd_ratio(spec.has_wd_ratio() ? spec.wd_ratio() : 0.1);
  o.nesterov(spec.nesterov());
  return o;
}

SGDPOptions ToSGDP(const pendulum::v1::OptimizerSpec& spec, double weight_decay) {
  SGDPOptions o(spec.lr());
  o.momentum(spec.momentum());
  o.dampening(0);
  o.weight_decay(weight_decay);
  o.nesterov(spec.nesterov());
  o.eps(spec.has_eps() ? spec.eps() : 1e-8);
  o.delta(spec.has_delta() ? spec.delta() : 0.1);
  o.wd_ratio(spec.has_wd_ratio() ? spec.wd_ratio() : 0.1);
  return o;
}

}  // namespace

bool IsProjectedOptimizerType(std::string_view type) { return type == "adamp" || type == "sgdp"; }

absl::StatusOr<std::unique_ptr<torch::optim::OptimizerOptions>> MakeProjectedGroupOptions(
    const pendulum::v1::OptimizerSpec& spec, double weight_decay) {
  if (absl::Status s = CheckSpec(spec); !s.ok()) return s;
  if (spec.type() == "adamp") return std::make_unique<AdamPOptions>(ToAdamP(spec, weight_decay));
  return std::make_unique<SGDPOptions>(ToSGDP(spec, weight_decay));
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeProjectedOptimizer(
    const pendulum::v1::OptimizerSpec& spec, std::vector<torch::optim::OptimizerParamGroup> groups) {
  if (absl::Status s = CheckSpec(spec); !s.ok()) return s;
  const bool adamp = spec.type() == "adamp";
  for (size_t i = 0; i < groups.size(); ++i) {
    if (!groups[i].has_options()) continue;
    const bool ok = adamp ? dynamic_cast<const AdamPOptions*>(&groups[i].options()) != nullptr
                          : dynamic_cast<const SGDPOptions*>(&groups[i].options()) != nullptr;
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat("param group ", i, " carries options of another optimizer than '",
                                                     spec.type(), "'"));
    }
  }
  try {
    if (adamp) return std::unique_ptr<torch::optim::Optimizer>(new AdamP(std::move(groups), ToAdamP(spec, spec.weight_decay())));
    return std::unique_ptr<torch::optim::Optimizer>(new SGDP(std::move(groups), ToSGDP(spec, spec.weight_decay())));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("spec.optimizer: ", e.what_without_backtrace()));
  }
}

}  // namespace pendulum::train::optim
