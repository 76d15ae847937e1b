#include "worker/train/reg/adversarial_attack.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/utils.h>

namespace pendulum::train::reg {
namespace {

// Restores the model's train/eval mode on scope exit.
class EvalModeScope {
 public:
  explicit EvalModeScope(torch::nn::Module& model) : model_(model), was_training_(model.is_training()) {
    model_.eval();
  }
  ~EvalModeScope() { model_.train(was_training_); }

 private:
  torch::nn::Module& model_;
  bool was_training_;
};

// KL(p ‖ q) summed over the batch, with p = softmax(clean), q = softmax(adv).
at::Tensor KlSum(const at::Tensor& clean_logits, const at::Tensor& adv_logits) {
  at::Tensor log_q = at::log_softmax(adv_logits, 1);
  at::Tensor log_p = at::log_softmax(clean_logits, 1);
  return (log_p.exp() * (log_p - log_q)).sum();
}

}  // namespace

at::Tensor PgdAttack(torch::nn::Module& model, const ForwardFn& forward, const at::Tensor& x,
                     const at::Tensor& y, const PgdOptions& o) {
  EvalModeScope eval(model);
  // Attacks need input gradients even when called under a NoGradGuard (evaluation).
  torch::AutoGradMode enable_grad(true);
  at::Tensor clean_logits;
  if (o.objective == AttackObjective::kTradesKl) {
    torch::NoGradGuard no_grad;
    clean_logits = forward(x).detach();
  }
  at::Tensor x_adv = x.detach().clone();
  if (o.start == AttackStart::kGaussian) {
    x_adv = x_adv + o.start_std * at::randn_like(x_adv);
  } else if (o.start == AttackStart::kUniform) {
    x_adv = x_adv + at::empty_like(x_adv).uniform_(-o.epsilon, o.epsilon);
  }
  x_adv = at::min(at::max(x_adv, x - o.epsilon), x + o.epsilon).clamp(o.clip_min, o.clip_max).detach();
  for (int step = 0; step < o.steps; ++step) {
    x_adv.set_requires_grad(true);
    at::Tensor logits = forward(x_adv);
    at::Tensor loss = o.objective == AttackObjective::kTradesKl
                          ? KlSum(clean_logits, logits)
                          : at::cross_entropy_loss(logits, y);
    at::Tensor grad = torch::autograd::grad({loss}, {x_adv})[0];
    torch::NoGradGuard no_grad;
    x_adv = x_adv.detach() + o.step_size * grad.sign();
    x_adv = at::min(at::max(x_adv, x - o.epsilon), x + o.epsilon).clamp(o.clip_min, o.clip_max);
  }
  return x_adv.detach();
}

at::Tensor FgsmAttack(torch::nn::Module& model, const ForwardFn& forward, const at::Tensor& x,
                      const at::Tensor& y, double epsilon, double clip_min, double clip_max) {
  PgdOptions o;
  o.epsilon = epsilon;
  o.step_size = epsilon;
  o.steps = 1;
  o.objective = AttackObjective::kCrossEntropy;
  o.start = AttackStart::kNone;
  o.clip_min = clip_min;
  o.clip_max = clip_max;
  return PgdAttack(model, forward, x, y, o);
}

at::Tensor TradesLoss(const ForwardFn& forward, const at::Tensor& x, const at::Tensor& x_adv,
                      const at::Tensor& y, double beta) {
  at::Tensor clean = forward(x);
  at::Tensor adv = forward(x_adv);
  const double batch = static_cast<double>(x.size(0));
  return at::cross_entropy_loss(clean, y) + beta * KlSum(clean, adv) / batch;
}

}  // namespace pendulum::train::reg
