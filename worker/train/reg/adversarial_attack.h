#pragma once
// L∞ attacks for TSCNC (methods.md §5.3): PGD on CE or on the TRADES KL, and
// FGSM. The attack is crafted with the model in eval mode (BN frozen, trap
// 5.6.4); the model's previous train/eval mode is restored afterwards.
// Inputs are clipped to [clip_min, clip_max]. Gradients are enabled inside,
// so callers may hold a NoGradGuard. Returns a detached x_adv.
// Training thread only.

#include <functional>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)
#include <torch/nn/module.h>

namespace pendulum::train::reg {

using ForwardFn = std::function<at::Tensor(const at::Tensor&)>;

enum class AttackObjective {
  kCrossEntropy,  // maximise CE(f(x_adv), y)
  kTradesKl,      // maximise KL(softmax f(x) ‖ softmax f(x_adv)) (sum)
};
enum class AttackStart {
  kNone,
  kGaussian,  // x + std·N(0, 1) (TRADES code: std 0.001)
  kUniform,   // x + U(−ε, ε)
};

struct PgdOptions {
  double epsilon = 8.0 / 255.0;
  double step_size = 0.0069;
  int steps = 10;
  AttackObjective objective = AttackObjective::kTradesKl;
  AttackStart start = AttackStart::kGaussian;
  double start_std = 0.001;
  double clip_min = 0.0;
  double clip_max = 1.0;
};

// `model` is toggled to eval() during the attack; `forward` computes logits.
at::Tensor PgdAttack(torch::nn::Module& model, const ForwardFn& forward, const at::Tensor& x,
                     const at::Tensor& y, const PgdOptions& options);
// One step of size ε on the sign of the CE gradient.
at::Tensor FgsmAttack(torch::nn::Module& model, const ForwardFn& forward, const at::Tensor& x,
                      const at::Tensor& y, double epsilon, double clip_min = 0.0,
                      double clip_max = 1.0);

// TRADES loss (train mode): CE(f(x), y) + beta · KL(f(x) ‖ f(x_adv)) / B.
at::Tensor TradesLoss(const ForwardFn& forward, const at::Tensor& x, const at::Tensor& x_adv,
                      const at::Tensor& y, double beta);

}  // namespace pendulum::train::reg
