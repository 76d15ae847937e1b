#pragma once
// Tscnc: TSCNC's sparse and condition-number constraints plus HYDRA pruning
// attached to a model (methods.md §5). For every Linear/Conv2d it keeps the
// registered weight as the trained tensor and, before each forward, sets the
// effective weight  w ⊙ z_g (hard-concrete gate, gated layers only; bias gated
// too, which equals gating the channel output)  ⊙ m (HYDRA mask, prune and
// fine-tune phases only). R and L_cn follow §5.1-5.2 exactly; N is the
// training-set size (trap 5.6.5). Owned by the training method; training
// thread only.
//
//   auto t = Tscnc::Attach(*model, options);
//   (*t)->SetPhase(TscncPhase::kPretrain);
//   per step: (*t)->Materialize(true); loss = task + (*t)->Regularizer() + (*t)->CnLoss();
//             backward; opt.step(); PENDULUM_RETURN_IF_ERROR((*t)->AfterStep());

#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/train/reg/condition_number.h"
#include "worker/train/reg/hard_concrete_gate.h"
#include "worker/train/reg/reparam_layer.h"
#include "worker/train/reg/tsc_penalty.h"

namespace pendulum::train::reg {

enum class TscncPhase { kPretrain, kPrune, kFinetune };
absl::StatusOr<TscncPhase> ParseTscncPhase(const std::string& name);  // pretrain, prune, finetune

struct TscncOptions {
  TscForm tsc_form = TscForm::kCode;
  double tsc_a = 100.0;         // a
  double lambda0 = 0.001;       // λ0 ("lamba")
  double lambda_s = 1.0;        // λ_s ("lambdda")
  double train_size = 50000.0;  // N: training-set size
  double weight_decay = 5e-4;   // wd in ρ = N·wd and the BN decay
  double droprate_init = 0.3;   // gates' init; ρ /= (1 − d) on gated layers
  double pole_limit = 0.9;      // abort when |x|/a ≥ this (code form)
  bool cnc = true;
  CnForm cn_form = CnForm::kSlogdet;
  double cn_weight = 1.0;
  // Kept fraction of prunable weights in prune/fine-tune (0.1 = 90% pruned).
  double kept_fraction = 1.0;
  // Layer names (as FindReparamLayers reports them). Gated: hard-concrete gates
  // per output channel. CN: condition-number layers. Prunable: empty = all.
  std::vector<std::string> gate_layers;
  std::vector<std::string> cn_layers;
  std::vector<std::string> prunable_layers;
};

struct TscncLayerMetrics {
  std::string layer;
  SpectrumStats spectrum;          // of the effective (gated, masked) matrix
  double logdet = 0;               // log det(W Wᵀ/out) (CN layers; 0 otherwise)
  double expected_l0 = 0;          // gated: Σ(1 − q0)·fan_in; else numel
  double sparsity = 0;             // fraction of effective weights exactly 0
  double max_x_over_a = 0;         // gated layers: max_g |x_g|/a
  bool gated = false, cn = false, prunable = false;
};

struct TscncMetrics {
  std::vector<TscncLayerMetrics> layers;
  double lipschitz_bound = 1;      // Π σ_max over layers
  double expected_l0 = 0;
  double sparsity = 0;             // over prunable layers
  double tsc_term = 0;             // R
  double cn_term = 0;              // cn_weight · Σ L_cn
};

class Tscnc {
 public:
  // INVALID_ARGUMENT for bad options or a layer name that does not exist
  // (listing the model's layers). `model` must outlive the result.
  static absl::StatusOr<std::unique_ptr<Tscnc>> Attach(torch::nn::Module& model,
                                                       const TscncOptions& options);

  // Sets which tensors train: pretrain → weights, biases, gates (no mask);
  // prune → scores only (weights frozen, STE mask); fine-tune → weights under
  // the fixed mask. Entering prune initialises the scores from the weights.
  // Scores are registered ("<layer>.hydra_scores") from Attach on, so
  // checkpoints of every phase have the same keys.
  void SetPhase(TscncPhase phase);
  TscncPhase phase() const { return phase_; }
  // Effective weights for this forward; training = sample gates.
  void Materialize(bool training);
  at::Tensor Regularizer() const;  // R of §5.1
  at::Tensor CnLoss() const;       // cn_weight · Σ_cn layers L_cn (0 when cnc off)
  // After each optimizer step: clamp log α, then the pole guard.
  absl::Status AfterStep();
  TscncMetrics Metrics() const;

  std::vector<at::Tensor> gate_parameters() const;
  std::vector<at::Tensor> score_parameters() const;
  const std::vector<ReparamLayer>& layers() const { return layers_; }
  // Per-group x_g of gated layer i (−inf..0); undefined for ungated layers.
  at::Tensor GroupPrior(size_t i) const;

 private:
  Tscnc(torch::nn::Module& model, std::vector<ReparamLayer> layers, TscncOptions options);
  at::Tensor EffectiveWeight(size_t i, bool training, at::Tensor* gate_out) const;

  torch::nn::Module& model_;
  std::vector<ReparamLayer> layers_;
  TscncOptions options_;
  std::vector<HardConcreteGate> gates_;  // null holder for ungated layers
  std::vector<bool> cn_, prunable_;
  std::vector<at::Tensor> scores_;       // prunable layers ("hydra_scores" parameters)
  mutable std::vector<at::Tensor> fixed_masks_;  // fine-tune phase, lazily from the scores
  TscncPhase phase_ = TscncPhase::kPretrain;
};

}  // namespace pendulum::train::reg
