#include "worker/train/optim/adamp.h"

#include <cmath>
#include <memory>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/serialize/archive.h>
#include <torch/utils.h>

#include "worker/train/optim/param_state_key.h"
#include "worker/train/optim/projection.h"

namespace pendulum::train::optim {

AdamPOptions::AdamPOptions(double lr) : lr_(lr) {}

bool operator==(const AdamPOptions& lhs, const AdamPOptions& rhs) {
  return lhs.lr() == rhs.lr() && std::get<0>(lhs.betas()) == std::get<0>(rhs.betas()) &&
         std::get<1>(lhs.betas()) == std::get<1>(rhs.betas()) && lhs.eps() == rhs.eps() &&
         lhs.weight_decay() == rhs.weight_decay() && lhs.delta() == rhs.delta() &&
         lhs.wd_ratio() == rhs.wd_ratio() && lhs.nesterov() == rhs.nesterov();
}

void AdamPOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(betas);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(delta);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(wd_ratio);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(nesterov);
}

void AdamPOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(betas_t, betas);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, delta);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, wd_ratio);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, nesterov);
}

double AdamPOptions::get_lr() const { return lr(); }
void AdamPOptions::set_lr(const double lr) { this->lr(lr); }

bool operator==(const AdamPParamState& lhs, const AdamPParamState& rhs) {
  return lhs.step() == rhs.step() && torch::equal(lhs.exp_avg(), rhs.exp_avg()) &&
         torch::equal(lhs.exp_avg_sq(), rhs.exp_avg_sq());
}

void AdamPParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
}

void AdamPParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
}

AdamP::AdamP(std::vector<torch::optim::OptimizerParamGroup> param_groups, AdamPOptions defaults)
    : ProjectedOptimizer(std::move(param_groups), std::make_unique<AdamPOptions>(defaults)) {
  TORCH_CHECK(defaults.lr() >= 0, "Invalid learning rate: ", defaults.lr());
  TORCH_CHECK(defaults.eps() >= 0, "Invalid epsilon value: ", defaults.eps());
  const auto betas = defaults.betas();
  TORCH_CHECK(0 <= std::get<0>(betas) && std::get<0>(betas) < 1.0,
              "Invalid beta parameter at index 0: ", std::get<0>(betas));
  TORCH_CHECK(0 <= std::get<1>(betas) && std::get<1>(betas) < 1.0,
              "Invalid beta parameter at index 1: ", std::get<1>(betas));
  TORCH_CHECK(defaults.weight_decay() >= 0, "Invalid weight_decay value: ", defaults.weight_decay());
  TORCH_CHECK(defaults.delta() > 0, "Invalid delta value: ", defaults.delta());
  TORCH_CHECK(defaults.wd_ratio() >= 0 && defaults.wd_ratio() <= 1, "Invalid wd_ratio value: ",
              defaults.wd_ratio());
}

torch::Tensor AdamP::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  BeginStepStats();
  for (size_t gi = 0; gi < param_groups_.size(); ++gi) {
    auto& group = param_groups_[gi];
    const auto& options = static_cast<const AdamPOptions&>(group.options());
    const double beta1 = std::get<0>(options.betas());
    const double beta2 = std::get<1>(options.betas());
    for (size_t pi = 0; pi < group.params().size(); ++pi) {
      auto& p = group.params()[pi];
      if (!p.grad().defined()) continue;
      const auto& grad = p.grad();
      TORCH_CHECK(!grad.is_sparse(), "AdamP does not support sparse gradients");

      const auto key = ParamStateKey(p);
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto fresh = std::make_unique<AdamPParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(fresh)).first;
      }
      auto& state = static_cast<AdamPParamState&>(*it->second);
      at::Tensor before = SnapshotForStats(p);

      auto& exp_avg = state.exp_avg();
      auto& exp_avg_sq = state.exp_avg_sq();
      state.step(state.step() + 1);
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());

      exp_avg.mul_(beta1).add_(grad, 1 - beta1);
      exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      at::Tensor denom = (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(options.eps());
      const double step_size = options.lr() / bias_correction1;

      // A new tensor: projecting it leaves the moments untouched (§3.6 Trap 1).
      at::Tensor perturb = options.nesterov() ? (exp_avg * beta1 + grad * (1 - beta1)) / denom
                                              : exp_avg / denom;
      const ProjectionOutcome outcome =
          ProjectRadial(p, grad, perturb, options.delta(), options.wd_ratio(), options.eps());

      // Decoupled decay on lr (not on step_size), before the step (§3.6 Trap 3).
      if (options.weight_decay() > 0) {
        p.mul_(1 - options.lr() * options.weight_decay() * outcome.wd_factor);
      }
      p.add_(perturb, -step_size);
      RecordParamStats(static_cast<int>(gi), static_cast<int>(pi), p, before, outcome);
    }
  }
  return loss;
}

void AdamP::save(torch::serialize::OutputArchive& archive) const { serialize(*this, archive); }

void AdamP::load(torch::serialize::InputArchive& archive) {
  serialize(*this, archive);
  RestoreGroupOptions<AdamPOptions>(archive);
}

}  // namespace pendulum::train::optim
