#include "worker/train/reg/tsc_penalty.h"

#include "absl/strings/str_cat.h"

namespace pendulum::train::reg {

absl::StatusOr<TscForm> ParseTscForm(const std::string& name) {
  if (name.empty() || name == "code") return TscForm::kCode;
  if (name == "tl1_abs") return TscForm::kTl1Abs;
  if (name == "none") return TscForm::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("spec.method.tscnc.tsc_form: got \"", name, "\", must be one of code, tl1_abs, none"));
}

at::Tensor TscValue(const at::Tensor& x, double a, TscForm form) {
  switch (form) {
    case TscForm::kCode: return (a + 1) * x / (a + x);
    case TscForm::kTl1Abs: return (a + 1) * x.abs() / (a + x.abs());
    case TscForm::kNone: return x;
  }
  return x;
}

at::Tensor TscPenalty(const at::Tensor& x, double a, TscForm form) {
  switch (form) {
    case TscForm::kCode: return -TscValue(x, a, form);
    case TscForm::kTl1Abs: return TscValue(x, a, form);
    case TscForm::kNone: return x.abs();
  }
  return x.abs();
}

absl::Status CheckTscPole(const at::Tensor& x, double a, TscForm form, const std::string& layer,
                          double limit) {
  if (form != TscForm::kCode || x.numel() == 0) return absl::OkStatus();
  const double ratio = x.detach().abs().max().item<double>() / a;
  if (ratio >= limit) {
    return absl::FailedPreconditionError(absl::StrCat(
        "TSC pole guard: layer ", layer, " has |x|/a = ", ratio, " >= ", limit,
        " (code form (a+1)x/(a+x) has a pole at |x| = a; raise tsc_a, lower the prior "
        "precision, or use tsc_form: tl1_abs)"));
  }
  return absl::OkStatus();
}

}  // namespace pendulum::train::reg
