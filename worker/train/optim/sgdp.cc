#include "worker/train/optim/sgdp.h"

#include <memory>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/serialize/archive.h>
#include <torch/utils.h>

#include "worker/train/optim/param_state_key.h"
#include "worker/train/optim/projection.h"

namespace pendulum::train::optim {

SGDPOptions::SGDPOptions(double lr) : lr_(lr) {}

bool operator==(const SGDPOptions& lhs, const SGDPOptions& rhs) {
  return lhs.lr() == rhs.lr() && lhs.momentum() == rhs.momentum() && lhs.dampening() == rhs.dampening() &&
         lhs.weight_decay() == rhs.weight_decay() && lhs.nesterov() == rhs.nesterov() &&
         lhs.eps() == rhs.eps() && lhs.delta() == rhs.delta() && lhs.wd_ratio() == rhs.wd_ratio();
}

void SGDPOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(dampening);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(nesterov);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(delta);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(wd_ratio);
}

void SGDPOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, momentum);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, dampening);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, nesterov);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, delta);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, wd_ratio);
}

double SGDPOptions::get_lr() const { return lr(); }
void SGDPOptions::set_lr(const double lr) { this->lr(lr); }

bool operator==(const SGDPParamState& lhs, const SGDPParamState& rhs) {
  return torch::equal(lhs.momentum_buffer(), rhs.momentum_buffer());
}

void SGDPParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
}

void SGDPParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
}

SGDP::SGDP(std::vector<torch::optim::OptimizerParamGroup> param_groups, SGDPOptions defaults)
    : ProjectedOptimizer(std::move(param_groups), std::make_unique<SGDPOptions>(defaults)) {
  TORCH_CHECK(defaults.lr() >= 0, "Invalid learning rate: ", defaults.lr());
  TORCH_CHECK(defaults.momentum() >= 0 && defaults.momentum() < 1, "Invalid momentum value: ",
              defaults.momentum());
  TORCH_CHECK(defaults.weight_decay() >= 0, "Invalid weight_decay value: ", defaults.weight_decay());
  TORCH_CHECK(defaults.delta() > 0, "Invalid delta value: ", defaults.delta());
  TORCH_CHECK(defaults.wd_ratio() >= 0 && defaults.wd_ratio() <= 1, "Invalid wd_ratio value: ",
              defaults.wd_ratio());
}

torch::Tensor SGDP::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  BeginStepStats();
  for (size_t gi = 0; gi < param_groups_.size(); ++gi) {
    auto& group = param_groups_[gi];
    const auto& options = static_cast<const SGDPOptions&>(group.options());
    const double momentum = options.momentum();
    for (size_t pi = 0; pi < group.params().size(); ++pi) {
      auto& p = group.params()[pi];
      if (!p.grad().defined()) continue;
      const auto& grad = p.grad();

      const auto key = ParamStateKey(p);
      auto it = state_.find(key);
      if (it == state_.end()) {
        // The reference starts from a zero buffer (not from g as torch SGD does).
        auto fresh = std::make_unique<SGDPParamState>();
        fresh->momentum_buffer(torch::zeros_like(p, at::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(fresh)).first;
      }
      auto& state = static_cast<SGDPParamState&>(*it->second);
      at::Tensor before = SnapshotForStats(p);

      at::Tensor& buf = state.momentum_buffer();
      buf.mul_(momentum).add_(grad, 1 - options.dampening());
      // Without nesterov d_p aliases the buffer (reference quirk, see header).
      at::Tensor d_p = options.nesterov() ? grad + buf * momentum : buf;
      const ProjectionOutcome outcome =
          ProjectRadial(p, grad, d_p, options.delta(), options.wd_ratio(), options.eps());

      // SGDP: decoupled decay divided by (1 − μ) (§3.6 Trap 4).
      if (options.weight_decay() != 0) {
        p.mul_(1 - options.lr() * options.weight_decay() * outcome.wd_factor / (1 - momentum));
      }
      p.add_(d_p, -options.lr());
      RecordParamStats(static_cast<int>(gi), static_cast<int>(pi), p, before, outcome);
    }
  }
  return loss;
}

void SGDP::save(torch::serialize::OutputArchive& archive) const { serialize(*this, archive); }

void SGDP::load(torch::serialize::InputArchive& archive) {
  serialize(*this, archive);
  RestoreGroupOptions<SGDPOptions>(archive);
}

}  // namespace pendulum::train::optim
