#pragma once
// AdamP (Heo et al., ICLR 2021; clovaai/AdamP adamp.py) as a LibTorch
// optimizer, on the pattern of torch::optim::AdamW: AdamPOptions (per group),
// AdamPParamState (per tensor: step, exp_avg, exp_avg_sq) and AdamP.
// methods.md §3.2:
//   m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  denom = √v/√(1−β2^t) + eps
//   u = m/denom (or (β1 m + (1−β1) g)/denom with nesterov); the moments are never projected
//   u, wd_factor = ProjectRadial(p, g, u)            (tensors with >= 2 dims)
//   p ← p·(1 − lr·wd·wd_factor);  p ← p − lr/(1−β1^t)·u   (decay on lr, not on the step)
// Not thread-safe (like every torch optimizer). state is saved/loaded by save()/load().

#include <tuple>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

#include "worker/train/optim/projected_optimizer.h"

namespace pendulum::train::optim {

struct AdamPOptions : public torch::optim::OptimizerCloneableOptions<AdamPOptions> {
  AdamPOptions(double lr = 1e-3);  // NOLINT: implicit like torch::optim::AdamOptions
  // Learning rate, >= 0. Default 1e-3.
  TORCH_ARG(double, lr) = 1e-3;
  typedef std::tuple<double, double> betas_t;
  // Moment decay rates, each in [0, 1). Default (0.9, 0.999).
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);
  // Added to the denominator, and the eps of the cosine and the row norm. Default 1e-8.
  TORCH_ARG(double, eps) = 1e-8;
  // Decoupled weight decay, >= 0. Default 0.
  TORCH_ARG(double, weight_decay) = 0;
  // Cosine threshold δ of the projection test, > 0. Default 0.1.
  TORCH_ARG(double, delta) = 0.1;
  // Weight-decay multiplier for projected tensors, in [0, 1]. Default 0.1.
  TORCH_ARG(double, wd_ratio) = 0.1;
  TORCH_ARG(bool, nesterov) = false;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const AdamPOptions& lhs, const AdamPOptions& rhs);
  double get_lr() const override;
  void set_lr(const double lr) override;
};

struct AdamPParamState : public torch::optim::OptimizerCloneableParamState<AdamPParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, exp_avg);
  TORCH_ARG(torch::Tensor, exp_avg_sq);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const AdamPParamState& lhs, const AdamPParamState& rhs);
};

class AdamP : public ProjectedOptimizer {
 public:
  // Throws c10::Error (TORCH_CHECK, naming the bad value) on invalid options,
  // like torch's own optimizers; MakeOptimizer() in optimizer_builder.h returns a Status instead.
  explicit AdamP(std::vector<torch::optim::OptimizerParamGroup> param_groups, AdamPOptions defaults = {});
  explicit AdamP(std::vector<torch::Tensor> params, AdamPOptions defaults = {})
      : AdamP({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  template <typename Self, typename Archive>
  static void serialize(Self& self, Archive& archive) {
    _TORCH_OPTIM_SERIALIZE_WITH_TEMPLATE_ARG(AdamP);
  }
};

}  // namespace pendulum::train::optim
