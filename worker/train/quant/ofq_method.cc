#include "worker/train/quant/ofq_method.h"

#include <c10/util/Exception.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)

#include "absl/strings/str_cat.h"
#include "worker/train/models/vit.h"
#include "worker/train/quant/quant_mlp.h"

// Link note: this object references train_models (ViT), which links
// train_quant. Only pendulum-train (train_core links train_models and
// train_quant as whole archives) and tests that link train_models pull it in,
// so library targets stay acyclic.

namespace pendulum::train::quant {
namespace {

bool IsViT(const std::string& arch) {
  return arch == "vit" || arch == "deit_tiny" || arch == "deit_small" || arch == "vit_tiny28";
}

// The first training examples, normalised as the loader does (trap 9: the
// LSQ init must see training data).
torch::Tensor FirstTrainingBatch(const Dataset& d, int64_t n) {
  n = std::min<int64_t>(n, d.size());
  at::Tensor x = d.images.narrow(0, 0, n);
  if (d.is_image()) {
    x = x.to(at::kFloat) / 255.0;
    if (!d.mean.empty()) {
      at::Tensor mean = at::tensor(d.mean).reshape({1, -1, 1, 1});
      at::Tensor std = at::tensor(d.std).reshape({1, -1, 1, 1});
      x = (x - mean) / std;
    }
  } else {
    x = x.to(at::kFloat);
  }
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), d.example_shape.begin(), d.example_shape.end());
  return x.reshape(shape);
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

absl::StatusOr<ModelPtr> MakeOfqModel(const v1::ModelSpec& model, const ModelInputs& inputs,
                                      const v1::OfqMethod& ofq) {
  if (IsViT(model.arch())) {
    auto m = MakeViT(model, inputs, &ofq);
    if (!m.ok()) return m.status();
    return ModelPtr(*m);
  }
  if (model.arch() == "mlp") {
    auto m = MakeQuantMlp(model, inputs, ofq);
    if (!m.ok()) return m.status();
    return ModelPtr(*m);
  }
  return absl::InvalidArgumentError(absl::StrCat("spec.method.ofq: model.arch '", model.arch(),
                                                 "' has no quantized variant (allowed: vit, deit_tiny, "
                                                 "deit_small, vit_tiny28, mlp)"));
}

absl::Status OfqTrainingMethod::Setup(const TrainContext& ctx, ModelPtr* model) {
  ctx_ = ctx;
  const v1::RunSpec& spec = *ctx.spec;
  try {
    absl::StatusOr<ModelPtr> q = MakeOfqModel(spec.model(), ctx.inputs, spec_);
    if (!q.ok()) return q.status();
    ModelPtr qm = *q;
    // Full-precision weights (fresh or from spec.init) into the twin.
    if (auto* vit = dynamic_cast<ViT*>(qm.get())) {
      auto copied = LoadFullPrecisionViT(**model, *vit);
      if (!copied.ok()) return copied.status();
    } else {
      torch::NoGradGuard no_grad;
      auto src = (*model)->named_parameters(true);
      for (auto& p : qm->named_parameters(true)) {
        if (const torch::Tensor* s = src.find(p.key()); s != nullptr && s->sizes() == p.value().sizes()) {
          p.value().copy_(*s);
        }
      }
    }
    // Dummy forward on training data before the optimizer exists (trap 9).
    qm->to(ctx.device);
    qm->train();
    if (ctx.train_data != nullptr && ctx.train_data->size() > 0) {
      const int64_t bs = spec.schedule().batch_size() > 0 ? spec.schedule().batch_size() : 64;
      torch::NoGradGuard no_grad;
      qm->Forward(FirstTrainingBatch(*ctx.train_data, bs).to(ctx.device));
    }
    // A quantized checkpoint (QAT → CGA) carries scales, shifts and QKR
    // weights that the full-precision model could not take: load it here.
    const std::string& init = spec.init().checkpoint_path();
    if (!init.empty() && init_loader_) {
      absl::Status s = init_loader_(init, qm.get());
      if (!s.ok()) return s;
    }
    *model = qm;
    model_ = qm;

    weight_bits_ = spec_.weight_bits() > 0 ? static_cast<int>(spec_.weight_bits()) : 2;
    const auto& log = spec.logging();
    oscillation_every_ = log.has_oscillation_every_steps() ? log.oscillation_every_steps() : 50;
    snapshot_every_ = log.has_snapshot_every_steps() ? log.snapshot_every_steps() : 1000;
    top_k_ = log.has_snapshot_top_k() ? static_cast<int>(log.snapshot_top_k()) : 32;

    if (!spec_.oscillation().disabled()) {
      OscillationMonitorOptions mo;
      if (spec_.oscillation().has_momentum()) mo.momentum = spec_.oscillation().momentum();
      if (spec_.oscillation().thresholds_size() > 0) {
        mo.thresholds.assign(spec_.oscillation().thresholds().begin(), spec_.oscillation().thresholds().end());
      }
      mo.start_step = static_cast<int64_t>(spec_.oscillation().start_step());
      monitor_ = std::make_unique<OscillationMonitor>(mo);
      monitor_->Attach(qm);
    }
    if (spec_.cga().enabled()) {
      const double br = spec_.cga().has_boundary_range() ? spec_.cga().boundary_range() : 0.005;
      std::vector<CgaTarget> targets;
      for (const auto& item : qm->named_modules("", false)) {
        auto* src = dynamic_cast<QuantWeightSource*>(item.value().get());
        if (src == nullptr || !src->has_quant_view()) continue;
        QuantWeightView v = src->quant_view();
        if (v.cga_target && v.param.defined()) targets.push_back({item.key(), v.param, v.bits});
        if (auto* qk = dynamic_cast<QkProductImpl*>(item.value().get())) qk->set_cga_active(true);
      }
      if (targets.empty()) {
        return absl::InvalidArgumentError(
            "spec.method.ofq.cga.enabled: no StatsQ block weights to anneal (weight_quantizer must be statsq)");
      }
      cga_ = std::make_unique<ConfidenceGuidedAnnealing>(std::move(targets), br);
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("ofq setup: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

bool OfqTrainingMethod::ExcludeFromWeightDecay(const std::string& name, const torch::Tensor& p) const {
  // Quantizer scales and the learnable shifts are not weights.
  return EndsWith(name, ".s") || name.find("move_") != std::string::npos;
}

absl::Status OfqTrainingMethod::AfterBackward(const StepInfo& info) {
  if (cga_) cga_->MaskGradients();
  return absl::OkStatus();
}

absl::Status OfqTrainingMethod::AfterOptimizerStep(const StepInfo& info) {
  if (cga_) cga_->RestoreFrozen();
  if (!monitor_) return absl::OkStatus();
  // The layers hold the codes of this step's forward (trap 8).
  monitor_->Step(info.step);
  window_flips_ += monitor_->FlipRate(weight_bits_);
  ++window_steps_;
  if (oscillation_every_ > 0 && info.step % oscillation_every_ == 0) {
    absl::Status s = ctx_.events->EmitOscillation(monitor_->Stats(info.step, cga_.get()));
    if (!s.ok()) return s;
  }
  if (snapshot_every_ > 0 && info.step % snapshot_every_ == 0) return EmitSnapshots(info.step);
  return absl::OkStatus();
}

void OfqTrainingMethod::AddStepScalars(const StepInfo& info, std::map<std::string, double>* values) {
  if (monitor_) {
    (*values)["ofq/osc_ratio"] = monitor_->OscillationRatio(0.005);
    (*values)["ofq/osc_ratio_wq"] = monitor_->OscillationRatio(0.005, weight_bits_);
    if (window_steps_ > 0) (*values)["ofq/flip_rate_wq"] = window_flips_ / static_cast<double>(window_steps_);
    window_flips_ = 0;
    window_steps_ = 0;
  }
  if (cga_) (*values)["ofq/cga_free_frac"] = cga_->free_fraction();
}

absl::Status OfqTrainingMethod::EmitSnapshots(int64_t step) {
  if (!monitor_ || step == last_snapshot_step_) return absl::OkStatus();
  last_snapshot_step_ = step;
  for (const auto& snap : monitor_->Snapshots(step, top_k_)) {
    absl::Status s = ctx_.events->EmitSnapshot(snap);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status OfqTrainingMethod::OnTrainEnd(const StepInfo& info) {
  if (monitor_) {
    absl::Status s = ctx_.events->EmitOscillation(monitor_->Stats(info.step, cga_.get()));
    if (!s.ok()) return s;
  }
  return EmitSnapshots(info.step);
}

absl::Status OfqTrainingMethod::SaveState(torch::serialize::OutputArchive* archive) const {
  try {
    if (monitor_) monitor_->Save(*archive);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("saving OFQ tracker state: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status OfqTrainingMethod::LoadState(torch::serialize::InputArchive* archive) {
  try {
    if (monitor_) monitor_->Load(*archive);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("loading OFQ tracker state: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace pendulum::train::quant
