#include "worker/train/reg/tscnc_method.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "worker/train/core/method_registry.h"
#include "worker/train/data/data_loader.h"

namespace pendulum::train::reg {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

absl::StatusOr<TscncRunOptions> TscncMethod::OptionsFromSpec(const v1::TscncMethod& m) {
  TscncRunOptions r;
  TscncOptions& t = r.tscnc;
  std::vector<std::string> errors;
  const std::string p = "spec.method.tscnc.";
  // tsc = false: the plain L0/L2 prior (baseline); tsc = true: tsc_form.
  if (m.tsc()) {
    auto form = ParseTscForm(m.tsc_form());
    if (form.ok()) t.tsc_form = *form; else errors.push_back(std::string(form.status().message()));
  } else {
    t.tsc_form = TscForm::kNone;
  }
  auto cn = ParseCnForm(m.cn_form());
  if (cn.ok()) t.cn_form = *cn; else errors.push_back(std::string(cn.status().message()));
  t.cnc = m.cnc();
  if (m.tsc_weight() > 0) t.lambda_s = m.tsc_weight();
  if (m.cnc_weight() > 0) t.cn_weight = m.cnc_weight();
  if (m.has_tsc_a()) t.tsc_a = m.tsc_a();
  if (m.has_lambda0()) t.lambda0 = m.lambda0();
  t.train_size = m.train_size();  // 0: filled in Setup
  if (m.has_prior_weight_decay()) t.weight_decay = m.prior_weight_decay();
  if (m.has_droprate_init()) t.droprate_init = m.droprate_init();
  if (m.has_pole_limit()) {
    if (!(m.pole_limit() > 0 && m.pole_limit() < 1)) errors.push_back(absl::StrCat(p, "pole_limit: got ", m.pole_limit(), ", must be in (0, 1)"));
    t.pole_limit = m.pole_limit();
  }
  t.kept_fraction = m.sparsity() > 0 ? m.sparsity() : 1.0;
  t.gate_layers.assign(m.gate_layers().begin(), m.gate_layers().end());
  t.cn_layers.assign(m.cn_layers().begin(), m.cn_layers().end());
  if (m.phase().empty() || m.phase() == "all") {
    r.all_phases = true;
  } else {
    auto phase = ParseTscncPhase(m.phase());
    if (phase.ok()) {
      r.all_phases = false;
      r.single_phase = *phase;
    } else {
      errors.push_back(std::string(phase.status().message()));
    }
  }
  if (m.pretrain_epochs() > 0) r.phase_epochs[0] = m.pretrain_epochs();
  if (m.prune_epochs() > 0) r.phase_epochs[1] = m.prune_epochs();
  if (m.finetune_epochs() > 0) r.phase_epochs[2] = m.finetune_epochs();
  const v1::AdversarialSpec& a = m.adversarial();
  r.adversarial = a.enabled();
  if (a.loss() == "pgd_ce") {
    r.trades = false;
  } else if (!a.loss().empty() && a.loss() != "trades") {
    errors.push_back(absl::StrCat(p, "adversarial.loss: got \"", a.loss(), "\", must be trades or pgd_ce"));
  }
  if (a.trades_beta() > 0) r.trades_beta = a.trades_beta();
  PgdOptions& pgd = r.train_attack;
  if (a.epsilon() > 0) pgd.epsilon = a.epsilon();
  if (a.step_size() > 0) pgd.step_size = a.step_size();
  if (a.steps() > 0) pgd.steps = static_cast<int>(a.steps());
  pgd.objective = r.trades ? AttackObjective::kTradesKl : AttackObjective::kCrossEntropy;
  if (a.start().empty() || a.start() == "gaussian") {
    pgd.start = AttackStart::kGaussian;
  } else if (a.start() == "uniform") {
    pgd.start = AttackStart::kUniform;
  } else if (a.start() == "none") {
    pgd.start = AttackStart::kNone;
  } else {
    errors.push_back(absl::StrCat(p, "adversarial.start: got \"", a.start(), "\", must be gaussian, uniform or none"));
  }
  if (a.has_start_std()) pgd.start_std = a.start_std();
  if (a.eval_pgd_steps() > 0) r.eval_pgd_steps = static_cast<int>(a.eval_pgd_steps());
  if (a.eval_pgd_step_size() > 0) r.eval_pgd_step_size = a.eval_pgd_step_size();
  if (m.robust_eval_examples() > 0) r.robust_eval_examples = m.robust_eval_examples();
  if (!errors.empty()) {
    std::string msg;
    for (const auto& e : errors) absl::StrAppend(&msg, msg.empty() ? "" : "; ", e);
    return absl::InvalidArgumentError(msg);
  }
  return r;
}

void TscncMethod::DefaultLayers(const std::string& arch, torch::nn::Module& model,
                                std::vector<std::string>* gates, std::vector<std::string>* cn) {
  std::vector<ReparamLayer> layers = FindReparamLayers(model);
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string& n = layers[i].name;
    const bool last = i + 1 == layers.size();
    if (arch == "wrn") {
      if (EndsWith(n, ".conv1") && n.find(".block") != std::string::npos) gates->push_back(n);
      if (n == "head") cn->push_back(n);
    } else if (arch == "vgg16") {
      if (n == "head") cn->push_back(n);
    } else if (arch == "mlp" || arch == "block_mlp") {
      if (!last) gates->push_back(n);
      cn->push_back(n);
    }
  }
}

absl::Status TscncMethod::Setup(const TrainContext& ctx, ModelPtr* model) {
  PENDULUM_RETURN_IF_ERROR(TrainingMethod::Setup(ctx, model));
  TscncOptions t = o_.tscnc;
  std::vector<std::string> gates, cn;
  DefaultLayers(ctx.spec->model().arch(), **model, &gates, &cn);
  if (t.gate_layers.empty()) t.gate_layers = gates;
  // L_cn needs a full-rank out × out Gram W Wᵀ: with out > fan_in it is
  // singular (log det = −inf, NaN gradients). Default layers of that shape are
  // skipped (logged); a requested one is a spec error.
  const bool cn_defaulted = t.cn_layers.empty();
  if (cn_defaulted) t.cn_layers = cn;
  std::vector<std::string> cn_kept;
  for (const ReparamLayer& l : FindReparamLayers(**model)) {
    if (std::find(t.cn_layers.begin(), t.cn_layers.end(), l.name) == t.cn_layers.end()) continue;
    if (l.out_channels <= l.fan_in) {
      cn_kept.push_back(l.name);
    } else if (!cn_defaulted) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.method.tscnc.cn_layers: layer '", l.name, "' has ", l.out_channels, " outputs > ", l.fan_in,
          " inputs, so its Gram W W^T is singular and the condition-number constraint is undefined"));
    } else if (ctx.events != nullptr) {
      ctx.events->EmitLog("warning", absl::StrCat("tscnc: no CN on layer ", l.name, " (", l.out_channels,
                                                  " outputs > ", l.fan_in, " inputs: singular Gram)"))
          .IgnoreError();  // best effort; the run goes on without CN there
    }
  }
  if (!cn_kept.empty() || cn_defaulted) {
    // Unknown names stay in the list so that Attach reports them.
    for (const std::string& n : t.cn_layers) {
      bool known = false;
      for (const ReparamLayer& l : FindReparamLayers(**model)) known |= l.name == n;
      if (!known) cn_kept.push_back(n);
    }
    t.cn_layers = cn_kept;
  }
  if (t.train_size <= 0) {
    int64_t n = ctx.train_data != nullptr ? ctx.train_data->size() : 0;
    const uint32_t subset = ctx.spec->data().train_subset();
    if (subset > 0 && subset < n) n = subset;
    t.train_size = static_cast<double>(std::max<int64_t>(n, 1));
  }
  PENDULUM_ASSIGN_OR_RETURN(tscnc_, Tscnc::Attach(**model, t));
  // ε and the [0, 1] box are in pixel units; the loader normalises uint8 images
  // with (x/255 − mean)/std, so convert (exact for one channel; mean std otherwise).
  if (ctx.train_data != nullptr && ctx.train_data->is_image() && !ctx.train_data->std.empty()) {
    const auto& s = ctx.train_data->std;
    const auto& m = ctx.train_data->mean;
    const double std_mean = std::accumulate(s.begin(), s.end(), 0.0) / s.size();
    const double mean_mean = m.empty() ? 0.0 : std::accumulate(m.begin(), m.end(), 0.0) / m.size();
    input_scale_ = 1.0 / std_mean;
    clip_min_ = (0.0 - mean_mean) / std_mean;
    clip_max_ = (1.0 - mean_mean) / std_mean;
  } else {
    input_scale_ = 1.0;
    clip_min_ = -std::numeric_limits<double>::infinity();
    clip_max_ = std::numeric_limits<double>::infinity();
  }
  return absl::OkStatus();
}

PgdOptions TscncMethod::ToInputUnits(PgdOptions p) const {
  p.epsilon *= input_scale_;
  p.step_size *= input_scale_;
  p.start_std *= input_scale_;
  p.clip_min = clip_min_;
  p.clip_max = clip_max_;
  return p;
}

bool TscncMethod::Frozen(const std::string& name, const torch::Tensor&) const {
  const bool score = name.find("hydra_scores") != std::string::npos;
  const bool gate = name.find("l0_gate") != std::string::npos;
  switch (tscnc_->phase()) {
    case TscncPhase::kPretrain: return score;
    case TscncPhase::kPrune: return !score;
    case TscncPhase::kFinetune: return score || gate;
  }
  return false;
}

bool TscncMethod::ExcludeFromWeightDecay(const std::string& name, const torch::Tensor&) const {
  // R already carries the prior (weight decay) of every weight, gate and BN
  // parameter; scores are not weights.
  return true;
}

absl::Status TscncMethod::BeginStage(int stage, ModelPtr*, StagePlan* plan) {
  const TscncPhase phase = o_.all_phases ? static_cast<TscncPhase>(stage) : o_.single_phase;
  tscnc_->SetPhase(phase);
  const int idx = static_cast<int>(phase);
  plan->epochs = o_.all_phases ? o_.phase_epochs[idx] : 0;
  plan->rebuild_optimizer = true;
  plan->label = absl::StrCat("tscnc phase ", idx == 0 ? "pretrain" : idx == 1 ? "prune" : "finetune");
  return absl::OkStatus();
}

absl::StatusOr<LossOutput> TscncMethod::ComputeLoss(const Batch& batch, const StepInfo&) {
  LossOutput out;
  ForwardFn fwd = [this](const at::Tensor& x) { return model_->Forward(x).logits; };
  at::Tensor task;
  if (o_.adversarial) {
    tscnc_->Materialize(/*training=*/false);  // craft against the deterministic gates, eval mode
    const at::Tensor x_adv = PgdAttack(*model_, fwd, batch.x, batch.y, ToInputUnits(o_.train_attack));
    tscnc_->Materialize(/*training=*/true);
    if (o_.trades) {
      task = TradesLoss(fwd, batch.x, x_adv, batch.y, o_.trades_beta);
      out.logits = fwd(batch.x).detach();
    } else {
      out.logits = fwd(x_adv);
      task = at::cross_entropy_loss(out.logits, batch.y);
    }
  } else {
    tscnc_->Materialize(/*training=*/true);
    out.logits = fwd(batch.x);
    task = at::cross_entropy_loss(out.logits, batch.y);
  }
  at::Tensor r = tscnc_->Regularizer();
  at::Tensor cn = tscnc_->CnLoss();
  out.loss = task + r + cn;
  out.scalars["tscnc/task"] = task.item<double>();
  out.scalars["tscnc/r"] = r.item<double>();
  out.scalars["tscnc/cn"] = cn.item<double>();
  return out;
}

absl::Status TscncMethod::AfterOptimizerStep(const StepInfo&) { return tscnc_->AfterStep(); }

torch::Tensor TscncMethod::EvalLogits(const torch::Tensor& x) {
  tscnc_->Materialize(/*training=*/false);
  return model_->Forward(x).logits;
}

void TscncMethod::AddEvalScalars(const StepInfo&, const torch::Tensor& logits, const torch::Tensor& labels,
                                 std::map<std::string, double>* values) {
  const TscncMetrics m = tscnc_->Metrics();
  for (const TscncLayerMetrics& l : m.layers) {
    (*values)["tscnc/sigma_max/" + l.layer] = l.spectrum.sigma_max;
    (*values)["tscnc/sigma_min/" + l.layer] = l.spectrum.sigma_min;
    (*values)["tscnc/kappa/" + l.layer] = std::min(l.spectrum.kappa, 1e300);
    // κ of the kept weights (all-zero rows/columns dropped, condition_number.h):
    // the whole-matrix κ of a pruned layer is ∞ by construction.
    (*values)["tscnc/sigma_min_kept/" + l.layer] = l.spectrum.sigma_min_kept;
    (*values)["tscnc/kappa_kept/" + l.layer] = std::min(l.spectrum.kappa_kept, 1e300);
    (*values)["tscnc/kept_rows/" + l.layer] = static_cast<double>(l.spectrum.kept_rows);
    (*values)["tscnc/kept_cols/" + l.layer] = static_cast<double>(l.spectrum.kept_cols);
    (*values)["tscnc/sparsity/" + l.layer] = l.sparsity;
    if (l.cn) (*values)["tscnc/logdet/" + l.layer] = l.logdet;
    if (l.gated) (*values)["tscnc/max_x_over_a/" + l.layer] = l.max_x_over_a;
  }
  (*values)["tscnc/lipschitz_bound"] = m.lipschitz_bound;
  (*values)["tscnc/expected_l0"] = m.expected_l0;
  (*values)["tscnc/sparsity"] = m.sparsity;
  (*values)["tscnc/tsc_term"] = m.tsc_term;
  (*values)["tscnc/cn_term"] = m.cn_term;
  // Robust accuracy (FGSM and PGD-k at ε) on the first examples of the eval set.
  if (ctx_.eval_data == nullptr || ctx_.eval_data->size() == 0) return;
  const int64_t n = std::min<int64_t>(o_.robust_eval_examples, ctx_.eval_data->size());
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  DataLoaderOptions lo;
  lo.batch_size = 256;
  lo.shuffle = false;
  lo.drop_last = false;
  DataLoader loader(ctx_.eval_data, idx, lo);
  loader.StartEpoch(0);
  PgdOptions pgd = o_.train_attack;
  pgd.steps = o_.eval_pgd_steps;
  pgd.step_size = o_.eval_pgd_step_size;
  pgd.objective = AttackObjective::kCrossEntropy;
  pgd.start = AttackStart::kUniform;
  pgd = ToInputUnits(pgd);
  ForwardFn fwd = [this](const at::Tensor& x) { return model_->Forward(x).logits; };
  torch::AutoGradMode grad_on(true);  // evaluation runs under NoGradGuard; attacks need gradients
  tscnc_->Materialize(/*training=*/false);
  double fgsm_ok = 0, pgd_ok = 0, count = 0;
  while (auto batch = loader.Next()) {
    at::Tensor x = batch->x.to(ctx_.device), y = batch->y.to(ctx_.device);
    at::Tensor xf = FgsmAttack(*model_, fwd, x, y, pgd.epsilon, pgd.clip_min, pgd.clip_max);
    at::Tensor xp = PgdAttack(*model_, fwd, x, y, pgd);
    torch::NoGradGuard no_grad;
    fgsm_ok += (fwd(xf).argmax(1) == y).sum().item<double>();
    pgd_ok += (fwd(xp).argmax(1) == y).sum().item<double>();
    count += static_cast<double>(y.size(0));
  }
  (*values)["tscnc/eval_fgsm_acc"] = fgsm_ok / count;
  (*values)["tscnc/eval_pgd_acc"] = pgd_ok / count;
  const double clean = logits.defined() && logits.numel() > 0
                           ? (logits.argmax(1) == labels).to(at::kDouble).mean().item<double>()
                           : 0.0;
  summary_ = absl::StrFormat("tscnc: clean acc %.4f, FGSM %.4f, PGD-%d %.4f (eps %.4g, %d examples); "
                             "sparsity %.4f; kappa (kept rows/cols)",
                             clean, fgsm_ok / count, o_.eval_pgd_steps, pgd_ok / count,
                             o_.train_attack.epsilon, static_cast<int>(count), m.sparsity);
  for (const TscncLayerMetrics& l : m.layers) {
    absl::StrAppendFormat(&summary_, " %s %.4g", l.layer, l.spectrum.kappa_kept);
  }
  absl::StrAppendFormat(&summary_, "; Lipschitz bound %.4g", m.lipschitz_bound);
}

PENDULUM_REGISTER_METHOD(tscnc, [](const TrainContext& ctx)
                                    -> absl::StatusOr<std::unique_ptr<TrainingMethod>> {
  PENDULUM_ASSIGN_OR_RETURN(TscncRunOptions o, TscncMethod::OptionsFromSpec(ctx.spec->method().tscnc()));
  return std::unique_ptr<TrainingMethod>(std::make_unique<TscncMethod>(o));
});

}  // namespace pendulum::train::reg
