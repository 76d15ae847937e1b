#include "worker/train/reg/weight_compander.h"

#include <cmath>
#include <utility>

#include <torch/utils.h>

#include "absl/strings/str_cat.h"

namespace pendulum::train::reg {

absl::StatusOr<std::unique_ptr<WeightCompander>> WeightCompander::Attach(
    torch::nn::Module& model, const WeightCompanderOptions& options) {
  WeightCompanderOptions opt = options;
  if (!opt.beta) opt.beta = (opt.family == CompanderFamily::kPower) ? 0.5 : 2.0;
  std::vector<std::string> errors;
  if (opt.a && !(*opt.a > 0)) errors.push_back(absl::StrCat("spec.method.compander.a: got ", *opt.a, ", must be > 0"));
  if (!(opt.a_std_multiplier > 0)) errors.push_back(absl::StrCat("spec.method.compander.a_std_multiplier: got ", opt.a_std_multiplier, ", must be > 0"));
  if (!(*opt.beta > 0)) errors.push_back(absl::StrCat("spec.method.compander.beta: got ", *opt.beta, ", must be > 0"));
  if (opt.family == CompanderFamily::kPower && !(*opt.beta < 1)) {
    errors.push_back(absl::StrCat("spec.method.compander.beta: got ", *opt.beta, ", the power family needs 0 < p < 1"));
  }
  if (!errors.empty()) {
    std::string msg;
    for (const auto& e : errors) absl::StrAppend(&msg, msg.empty() ? "" : "; ", e);
    return absl::InvalidArgumentError(msg);
  }
  std::vector<ReparamLayer> layers = FindReparamLayers(model);
  if (layers.empty()) {
    return absl::InvalidArgumentError("spec.method.compander: the model has no Linear or Conv2d layer to reparameterise");
  }
  auto wc = std::unique_ptr<WeightCompander>(new WeightCompander(std::move(layers), opt));
  return wc;
}

WeightCompander::WeightCompander(std::vector<ReparamLayer> layers, WeightCompanderOptions options)
    : layers_(std::move(layers)), options_(std::move(options)) {
  fn_.family = options_.family;
  fn_.power_eps = options_.power_eps;
  torch::NoGradGuard no_grad;
  for (const ReparamLayer& layer : layers_) {
    at::Tensor w = layer.latent_weight();
    const double a = options_.a ? *options_.a
                                : options_.a_std_multiplier * std::max(w.std().item<double>(), 1e-12);
    auto opts = at::TensorOptions().dtype(w.scalar_type()).device(w.device());
    at::Tensor log_a = at::full({}, std::log(a), opts);
    at::Tensor log_b = at::full({}, std::log(*options_.beta), opts);
    // Registered on the layer so they move with model->to(), are checkpointed,
    // and (learnable) reach the optimizer with the model's parameters.
    if (options_.learnable) {
      log_a = layer.module->register_parameter("compander_log_a", log_a);
      log_b = layer.module->register_parameter("compander_log_beta", log_b);
    } else {
      log_a = layer.module->register_buffer("compander_log_a", log_a);
      log_b = layer.module->register_buffer("compander_log_beta", log_b);
    }
    log_a_.push_back(log_a);
    log_beta_.push_back(log_b);
    w.copy_(fn_.Inverse(w, log_a.exp(), log_b.exp()));
  }
  Materialize();
}

bool WeightCompander::IsHyperParameterName(const std::string& name) {
  return name.find("compander_log_") != std::string::npos;
}

at::Tensor WeightCompander::a(size_t i) const { return log_a_.at(i).exp(); }
at::Tensor WeightCompander::beta(size_t i) const { return log_beta_.at(i).exp(); }

void WeightCompander::Materialize() {
  if (exported_) return;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const ReparamLayer& layer = layers_[i];
    layer.SetEffective(fn_.Forward(layer.latent_weight(), a(i), beta(i)), at::Tensor());
  }
}

std::vector<at::Tensor> WeightCompander::hyper_parameters() const {
  std::vector<at::Tensor> out;
  if (!options_.learnable) return out;
  out.insert(out.end(), log_a_.begin(), log_a_.end());
  out.insert(out.end(), log_beta_.begin(), log_beta_.end());
  return out;
}

void WeightCompander::Export() {
  if (exported_) return;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < layers_.size(); ++i) {
    at::Tensor v = layers_[i].latent_weight();
    v.copy_(fn_.Forward(v, a(i), beta(i)));
    layers_[i].Restore();
  }
  exported_ = true;
}

std::vector<CompanderLayerStats> WeightCompander::Stats() const {
  torch::NoGradGuard no_grad;
  std::vector<CompanderLayerStats> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    at::Tensor v = layers_[i].latent_weight().to(at::kDouble);
    at::Tensor a_i = a(i).to(at::kDouble), b_i = beta(i).to(at::kDouble);
    at::Tensor w = exported_ ? v : fn_.Forward(v, a_i, b_i);
    CompanderLayerStats s;
    s.layer = layers_[i].name;
    s.a = a_i.item<double>();
    s.beta = b_i.item<double>();
    s.max_abs_w = w.abs().max().item<double>();
    s.std_w = w.std().item<double>();
    const at::Tensor c = w - w.mean();
    const double var = c.pow(2).mean().item<double>();
    s.kurtosis = var > 0 ? c.pow(4).mean().item<double>() / (var * var) : 0.0;
    s.near_zero_frac = (w.abs() < 1e-3 * s.std_w).to(at::kDouble).mean().item<double>();
    s.saturated_frac = exported_ ? 0.0
                                 : (fn_.Derivative(v, a_i, b_i) < 0.1).to(at::kDouble).mean().item<double>();
    out.push_back(s);
  }
  return out;
}

}  // namespace pendulum::train::reg
