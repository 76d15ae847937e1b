#include "worker/train/reg/compander_method.h"

#include <algorithm>

#include <torch/serialize/output-archive.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "worker/train/core/method_registry.h"

namespace pendulum::train::reg {

absl::StatusOr<WeightCompanderOptions> CompanderMethod::OptionsFromSpec(
    const v1::CompanderMethod& m) {
  WeightCompanderOptions o;
  PENDULUM_ASSIGN_OR_RETURN(o.family, ParseCompanderFamily(m.family()));
  if (m.has_a()) o.a = m.a();
  if (m.has_beta()) o.beta = m.beta();
  o.learnable = m.learnable();
  if (m.has_a_std_multiplier()) o.a_std_multiplier = m.a_std_multiplier();
  if (m.has_power_eps()) {
    if (!(m.power_eps() > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.method.compander.power_eps: got ", m.power_eps(), ", must be > 0"));
    }
    o.power_eps = m.power_eps();
  }
  return o;
}

absl::Status CompanderMethod::Setup(const TrainContext& ctx, ModelPtr* model) {
  PENDULUM_RETURN_IF_ERROR(TrainingMethod::Setup(ctx, model));
  PENDULUM_ASSIGN_OR_RETURN(compander_, WeightCompander::Attach(**model, options_));
  if (ctx.events != nullptr) {
    ctx.events->EmitLog("info", absl::StrCat("compander: results are WC-like (family ",
                                             CompanderFamilyName(options_.family),
                                             "): the paper's f is a GAP (methods.md §4)"))
        .IgnoreError();  // a log line is best effort; events failing shows up on the next scalar
  }
  return absl::OkStatus();
}

bool CompanderMethod::ExcludeFromWeightDecay(const std::string& name, const torch::Tensor&) const {
  return WeightCompander::IsHyperParameterName(name);
}

absl::StatusOr<LossOutput> CompanderMethod::ComputeLoss(const Batch& batch, const StepInfo& info) {
  compander_->Materialize();
  return TrainingMethod::ComputeLoss(batch, info);
}

torch::Tensor CompanderMethod::EvalLogits(const torch::Tensor& x) {
  compander_->Materialize();
  return model_->Forward(x).logits;
}

void CompanderMethod::AddStepScalars(const StepInfo&, std::map<std::string, double>* values) {
  if (!options_.learnable) return;
  for (size_t i = 0; i < compander_->layers().size(); ++i) {
    const std::string& layer = compander_->layers()[i].name;
    (*values)["compander/a/" + layer] = compander_->a(i).item<double>();
    (*values)["compander/beta/" + layer] = compander_->beta(i).item<double>();
  }
}

void CompanderMethod::AddEvalScalars(const StepInfo&, const torch::Tensor& logits, const torch::Tensor& labels,
                                     std::map<std::string, double>* values) {
  double max_abs = 0, near_zero = 0, saturated = 0, total = 0;
  for (const CompanderLayerStats& s : compander_->Stats()) {
    const std::string p = "compander/";
    (*values)[p + "max_abs_w/" + s.layer] = s.max_abs_w;
    (*values)[p + "std_w/" + s.layer] = s.std_w;
    (*values)[p + "kurtosis/" + s.layer] = s.kurtosis;
    (*values)[p + "near_zero_frac/" + s.layer] = s.near_zero_frac;
    (*values)[p + "saturated_frac/" + s.layer] = s.saturated_frac;
    max_abs = std::max(max_abs, s.max_abs_w);
    near_zero += s.near_zero_frac;
    saturated += s.saturated_frac;
    total += 1;
  }
  (*values)["compander/max_abs_w"] = max_abs;
  (*values)["compander/near_zero_frac"] = near_zero / std::max(total, 1.0);
  (*values)["compander/saturated_frac"] = saturated / std::max(total, 1.0);
  const double acc = logits.defined() && logits.numel() > 0
                         ? (logits.argmax(1) == labels).to(at::kDouble).mean().item<double>()
                         : 0.0;
  summary_ = absl::StrFormat(
      "WC-like (family %s, %s; methods.md §4 GAP): eval acc %.4f; effective weights: max |w| %.4g, "
      "near-zero frac %.4g, f' < 0.1 frac %.4g (means over %d layers)",
      CompanderFamilyName(options_.family), options_.learnable ? "learnable A, beta" : "fixed A, beta", acc,
      max_abs, near_zero / std::max(total, 1.0), saturated / std::max(total, 1.0), static_cast<int>(total));
}

absl::Status CompanderMethod::OnTrainEnd(const StepInfo& info) {
  compander_->Export();
  if (ctx_.out_dir.empty()) return absl::OkStatus();
  const std::string path = (ctx_.out_dir / "model_export.pt").string();
  try {
    torch::serialize::OutputArchive archive;
    for (const auto& p : model_->named_parameters()) {
      if (!WeightCompander::IsHyperParameterName(p.key())) archive.write(p.key(), p.value().detach().cpu());
    }
    for (const auto& b : model_->named_buffers()) {
      if (!WeightCompander::IsHyperParameterName(b.key())) archive.write(b.key(), b.value().cpu(), /*is_buffer=*/true);
    }
    archive.save_to(path);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("compander: writing model_export.pt: ", e.what_without_backtrace()));
  }
  // The inference weights go to the server like an analysis result, so
  // `pendulum artifact RUN compander/model_export.pt` fetches them; the
  // worker's out dir is gone once the attempt is delivered.
  if (ctx_.events == nullptr) return absl::OkStatus();
  return ctx_.events->EmitArtifact(info.step, "compander/model_export.pt", path, "model");
}

PENDULUM_REGISTER_METHOD(compander, [](const TrainContext& ctx)
                                        -> absl::StatusOr<std::unique_ptr<TrainingMethod>> {
  PENDULUM_ASSIGN_OR_RETURN(WeightCompanderOptions o,
                            CompanderMethod::OptionsFromSpec(ctx.spec->method().compander()));
  return std::unique_ptr<TrainingMethod>(std::make_unique<CompanderMethod>(o));
});

}  // namespace pendulum::train::reg
