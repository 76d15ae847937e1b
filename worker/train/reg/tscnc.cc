#include "worker/train/reg/tscnc.h"

#include <algorithm>
#include <utility>

#include <torch/nn/modules/batchnorm.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/train/reg/hydra_scores.h"

namespace pendulum::train::reg {

absl::StatusOr<TscncPhase> ParseTscncPhase(const std::string& name) {
  if (name == "pretrain") return TscncPhase::kPretrain;
  if (name == "prune") return TscncPhase::kPrune;
  if (name == "finetune") return TscncPhase::kFinetune;
  return absl::InvalidArgumentError(absl::StrCat(
      "spec.method.tscnc.phase: got \"", name, "\", must be one of pretrain, prune, finetune, all"));
}

absl::StatusOr<std::unique_ptr<Tscnc>> Tscnc::Attach(torch::nn::Module& model,
                                                     const TscncOptions& o) {
  std::vector<std::string> errors;
  if (!(o.tsc_a > 0)) errors.push_back(absl::StrCat("spec.method.tscnc.tsc_a: got ", o.tsc_a, ", must be > 0"));
  if (!(o.train_size >= 1)) errors.push_back(absl::StrCat("spec.method.tscnc.train_size: got ", o.train_size, ", must be >= 1"));
  if (!(o.droprate_init > 0 && o.droprate_init < 1)) errors.push_back(absl::StrCat("spec.method.tscnc.droprate_init: got ", o.droprate_init, ", must be in (0, 1)"));
  if (!(o.kept_fraction > 0 && o.kept_fraction <= 1)) errors.push_back(absl::StrCat("spec.method.tscnc.sparsity: got ", o.kept_fraction, ", must be in (0, 1] (the kept fraction)"));
  if (o.lambda0 < 0 || o.lambda_s < 0 || o.weight_decay < 0 || o.cn_weight < 0) errors.push_back("spec.method.tscnc: lambda0, lambda_s, weight_decay and cn_weight must be >= 0");
  std::vector<ReparamLayer> layers = FindReparamLayers(model);
  std::vector<std::string> names;
  for (const auto& l : layers) names.push_back(l.name);
  auto check_names = [&](const std::vector<std::string>& wanted, const char* field) {
    for (const auto& n : wanted) {
      if (std::find(names.begin(), names.end(), n) == names.end()) {
        errors.push_back(absl::StrCat("spec.method.tscnc.", field, ": no Linear/Conv2d layer \"", n,
                                      "\"; the model has: ", absl::StrJoin(names, ", ")));
      }
    }
  };
  check_names(o.gate_layers, "gate_layers");
  check_names(o.cn_layers, "cn_layers");
  check_names(o.prunable_layers, "prunable_layers");
  if (layers.empty()) errors.push_back("spec.method.tscnc: the model has no Linear or Conv2d layer");
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return std::unique_ptr<Tscnc>(new Tscnc(model, std::move(layers), o));
}

Tscnc::Tscnc(torch::nn::Module& model, std::vector<ReparamLayer> layers, TscncOptions options)
    : model_(model), layers_(std::move(layers)), options_(std::move(options)) {
  auto has = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  for (const ReparamLayer& l : layers_) {
    if (has(options_.gate_layers, l.name)) {
      HardConcreteGateOptions go;
      go.channels = l.out_channels;
      go.droprate_init = options_.droprate_init;
      HardConcreteGate gate(go);
      gate->to(l.latent_weight().device(), l.latent_weight().scalar_type());
      // Registered on the gated module so checkpoints and model->parameters() include it.
      l.module->register_module("l0_gate", gate);
      gates_.push_back(gate);
    } else {
      gates_.push_back(HardConcreteGate(nullptr));
    }
    cn_.push_back(has(options_.cn_layers, l.name));
    prunable_.push_back(options_.prunable_layers.empty() || has(options_.prunable_layers, l.name));
  }
  // Scores exist from the start (frozen and unused before pruning) so that a
  // checkpoint of any phase loads into a model of any phase.
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (!prunable_[i]) {
      scores_.emplace_back();
      continue;
    }
    scores_.push_back(layers_[i].module->register_parameter(
        "hydra_scores", InitHydraScores(layers_[i].latent_weight()), /*requires_grad=*/false));
  }
  fixed_masks_.resize(layers_.size());
}

void Tscnc::SetPhase(TscncPhase phase) {
  phase_ = phase;
  const bool train_weights = phase != TscncPhase::kPrune;
  for (size_t i = 0; i < layers_.size(); ++i) {
    layers_[i].latent_weight().set_requires_grad(train_weights);
    if (layers_[i].latent_bias().defined()) layers_[i].latent_bias().set_requires_grad(train_weights);
    if (gates_[i]) gates_[i]->log_alpha.set_requires_grad(phase == TscncPhase::kPretrain);
    if (!prunable_[i]) continue;
    if (phase == TscncPhase::kPrune) {
      // HYDRA: scores start from the (pretrained) weights. On resume the loop
      // loads the saved scores after this.
      torch::NoGradGuard no_grad;
      scores_[i].copy_(InitHydraScores(layers_[i].latent_weight()));
    }
    scores_[i].set_requires_grad(phase == TscncPhase::kPrune);
    fixed_masks_[i] = at::Tensor();  // fine-tune: computed from the scores on first use
  }
}

at::Tensor Tscnc::EffectiveWeight(size_t i, bool training, at::Tensor* gate_out) const {
  const ReparamLayer& l = layers_[i];
  at::Tensor w = l.latent_weight();
  if (prunable_[i] && phase_ == TscncPhase::kPrune) {
    w = w * HydraMaskSte(scores_[i], options_.kept_fraction);
  } else if (prunable_[i] && phase_ == TscncPhase::kFinetune) {
    if (!fixed_masks_[i].defined()) fixed_masks_[i] = HydraMask(scores_[i], options_.kept_fraction);
    w = w * fixed_masks_[i];
  }
  if (gates_[i]) {
    at::Tensor z = training ? gates_[i]->Sample() : gates_[i]->Deterministic();
    if (gate_out != nullptr) *gate_out = z;
    std::vector<int64_t> shape(w.dim(), 1);
    shape[0] = z.size(0);
    w = w * z.view(shape);
  }
  return w;
}

void Tscnc::Materialize(bool training) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    at::Tensor z;
    at::Tensor w = EffectiveWeight(i, training, &z);
    at::Tensor b = layers_[i].latent_bias();
    if (z.defined() && b.defined()) b = b * z;
    layers_[i].SetEffective(w, b);
  }
}

at::Tensor Tscnc::GroupPrior(size_t i) const {
  if (!gates_[i]) return at::Tensor();
  const at::Tensor w = layers_[i].latent_weight();
  const double rho = options_.train_size * options_.weight_decay / (1 - options_.droprate_init);
  at::Tensor sq = w.pow(2).reshape({w.size(0), -1}).sum(1);
  const double group = static_cast<double>(w.numel() / w.size(0));
  return (1 - gates_[i]->ProbZero()) * (-0.5 * rho * sq - options_.lambda0 * group);
}

at::Tensor Tscnc::Regularizer() const {
  const at::Tensor w0 = layers_.front().latent_weight();
  at::Tensor r = at::zeros({}, w0.options());
  const double n = options_.train_size;
  const double rho_plain = options_.train_size * options_.weight_decay;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (gates_[i]) {
      r = r + options_.lambda_s / n * TscPenalty(GroupPrior(i), options_.tsc_a, options_.tsc_form).sum();
    } else {
      r = r + options_.lambda_s / n * 0.5 * rho_plain * layers_[i].latent_weight().pow(2).sum();
    }
  }
  for (const auto& m : model_.modules(/*include_self=*/true)) {
    if (m->as<torch::nn::BatchNorm2dImpl>() == nullptr && m->as<torch::nn::BatchNorm1dImpl>() == nullptr) continue;
    for (const auto& p : m->parameters(/*recurse=*/false)) {
      r = r + options_.weight_decay * 0.5 * p.pow(2).sum();
    }
  }
  return r;
}

at::Tensor Tscnc::CnLoss() const {
  const at::Tensor w0 = layers_.front().latent_weight();
  at::Tensor total = at::zeros({}, w0.options());
  if (!options_.cnc) return total;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (!cn_[i]) continue;
    total = total + ::pendulum::train::reg::CnLoss(EffectiveWeight(i, /*training=*/false, nullptr),
                                                   options_.cn_form);
  }
  return options_.cn_weight * total;
}

absl::Status Tscnc::AfterStep() {
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (!gates_[i]) continue;
    gates_[i]->ClampLogAlpha();
    torch::NoGradGuard no_grad;
    absl::Status s = CheckTscPole(GroupPrior(i), options_.tsc_a, options_.tsc_form, layers_[i].name,
                                  options_.pole_limit);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

TscncMetrics Tscnc::Metrics() const {
  torch::NoGradGuard no_grad;
  TscncMetrics m;
  double kept = 0, total = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    TscncLayerMetrics lm;
    lm.layer = layers_[i].name;
    lm.gated = static_cast<bool>(gates_[i]);
    lm.cn = cn_[i];
    lm.prunable = prunable_[i];
    at::Tensor w = EffectiveWeight(i, /*training=*/false, nullptr);
    lm.spectrum = MatrixSpectrum(w);
    if (lm.cn) lm.logdet = GramLogDet(w).item<double>();
    const int64_t fan_in = w.numel() / w.size(0);
    if (lm.gated) {
      lm.expected_l0 = gates_[i]->ExpectedL0(fan_in).item<double>();
      lm.max_x_over_a = GroupPrior(i).abs().max().item<double>() / options_.tsc_a;
    } else {
      lm.expected_l0 = static_cast<double>(w.numel());
    }
    const double zeros = (w == 0).sum().item<double>();
    lm.sparsity = zeros / static_cast<double>(w.numel());
    if (lm.prunable) {
      kept += static_cast<double>(w.numel()) - zeros;
      total += static_cast<double>(w.numel());
    }
    m.lipschitz_bound *= lm.spectrum.sigma_max;
    m.expected_l0 += lm.gated ? lm.expected_l0 : 0.0;
    m.layers.push_back(lm);
  }
  m.sparsity = total > 0 ? 1.0 - kept / total : 0.0;
  m.tsc_term = Regularizer().item<double>();
  m.cn_term = CnLoss().item<double>();
  return m;
}

std::vector<at::Tensor> Tscnc::gate_parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& g : gates_) if (g) out.push_back(g->log_alpha);
  return out;
}

std::vector<at::Tensor> Tscnc::score_parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& s : scores_) if (s.defined()) out.push_back(s);
  return out;
}

}  // namespace pendulum::train::reg
