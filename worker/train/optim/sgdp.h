#pragma once
// SGDP (Heo et al., ICLR 2021; clovaai/AdamP sgdp.py) as a LibTorch optimizer
// on the pattern of torch::optim::SGD: SGDPOptions, SGDPParamState
// (momentum_buffer) and SGDP. methods.md §3.3:
//   buf ← μ·buf + (1 − dampening)·g          (dampening applies at step 1 too)
//   u = g + μ·buf (nesterov)  or  u = buf     (u IS the buffer: see below)
//   u, wd_factor = ProjectRadial(p, g, u)
//   p ← p·(1 − lr·wd·wd_factor/(1 − μ));  p ← p − lr·u
// Reference quirk kept on purpose (sgdp.json): without nesterov the projection
// is applied in place to the momentum buffer, so the stored buffer is the
// projected one; with nesterov u is a new tensor and the buffer stays raw.
// Not thread-safe. State is saved/loaded by save()/load().

#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

#include "worker/train/optim/projected_optimizer.h"

namespace pendulum::train::optim {

struct SGDPOptions : public torch::optim::OptimizerCloneableOptions<SGDPOptions> {
  SGDPOptions(double lr);  // NOLINT: implicit like torch::optim::SGDOptions
  // Learning rate, >= 0. Required.
  TORCH_ARG(double, lr);
  // Momentum μ in [0, 1). Default 0.
  TORCH_ARG(double, momentum) = 0;
  TORCH_ARG(double, dampening) = 0;
  // Decoupled weight decay (divided by 1 − μ), >= 0. Default 0.
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(bool, nesterov) = false;
  // eps of the cosine and the row norm. Default 1e-8.
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, delta) = 0.1;
  TORCH_ARG(double, wd_ratio) = 0.1;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const SGDPOptions& lhs, const SGDPOptions& rhs);
  double get_lr() const override;
  void set_lr(const double lr) override;
};

struct SGDPParamState : public torch::optim::OptimizerCloneableParamState<SGDPParamState> {
  TORCH_ARG(torch::Tensor, momentum_buffer);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const SGDPParamState& lhs, const SGDPParamState& rhs);
};

class SGDP : public ProjectedOptimizer {
 public:
  // Throws c10::Error (TORCH_CHECK) on invalid options, like torch::optim::SGD.
  explicit SGDP(std::vector<torch::optim::OptimizerParamGroup> param_groups, SGDPOptions defaults);
  explicit SGDP(std::vector<torch::Tensor> params, SGDPOptions defaults)
      : SGDP({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  template <typename Self, typename Archive>
  static void serialize(Self& self, Archive& archive) {
    _TORCH_OPTIM_SERIALIZE_WITH_TEMPLATE_ARG(SGDP);
  }
};

}  // namespace pendulum::train::optim
