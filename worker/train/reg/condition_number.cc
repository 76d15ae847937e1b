#include "worker/train/reg/condition_number.h"

#include <cmath>
#include <limits>

#include <torch/utils.h>

#include "absl/strings/str_cat.h"

namespace pendulum::train::reg {

absl::StatusOr<CnForm> ParseCnForm(const std::string& name) {
  if (name.empty() || name == "slogdet") return CnForm::kSlogdet;
  if (name == "logcond") return CnForm::kLogCond;
  return absl::InvalidArgumentError(
      absl::StrCat("spec.method.tscnc.cn_form: got \"", name, "\", must be one of slogdet, logcond"));
}

at::Tensor AsMatrix(const at::Tensor& w) { return w.reshape({w.size(0), -1}); }

at::Tensor GramLogDet(const at::Tensor& w) {
  at::Tensor m = AsMatrix(w).to(at::kDouble);
  const double out = static_cast<double>(m.size(0));
  at::Tensor gram = at::matmul(m, m.t()) / out;
  auto [sign, logabs] = at::linalg_slogdet(gram);
  // A PSD Gram has det ≥ 0; sign 0 means singular (log det = −inf).
  return at::where(sign > 0, logabs, at::full_like(logabs, -std::numeric_limits<double>::infinity()));
}

at::Tensor CnLoss(const at::Tensor& w, CnForm form) {
  at::Tensor loss;
  if (form == CnForm::kSlogdet) {
    // log(1e-5 + det G) has a finite gradient even when G is singular (the
    // adjugate), but slogdet's backward inverts G: a pruned matrix with a zero
    // row gives NaN. A ridge of 1e-12·mean(diag G) keeps G invertible; it moves
    // log det by about 1e-12·Σ mean/λ_i (negligible unless G is near singular).
    at::Tensor m = AsMatrix(w).to(at::kDouble);
    at::Tensor gram = at::matmul(m, m.t()) / static_cast<double>(m.size(0));
    const at::Tensor ridge = 1e-12 * (gram.diagonal().mean().detach() + 1e-300);
    gram = gram + ridge * at::eye(gram.size(0), gram.options());
    at::Tensor ld = std::get<1>(at::linalg_slogdet(gram));
    loss = at::logaddexp(ld, at::full_like(ld, std::log(1e-5))).pow(2);
  } else {
    // σ_min of a pruned matrix can be 0; floor it so the loss and its gradient stay finite.
    at::Tensor s = at::linalg_svdvals(AsMatrix(w).to(at::kDouble));
    loss = (at::log(s.max()) - at::log(s.min().clamp_min(1e-12))).pow(2);
  }
  return loss.to(w.scalar_type());
}

SpectrumStats MatrixSpectrum(const at::Tensor& w) {
  torch::NoGradGuard no_grad;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const at::Tensor m = AsMatrix(w.detach()).to(at::kDouble).cpu();
  at::Tensor s = at::linalg_svdvals(m);
  SpectrumStats out;
  out.sigma_max = s.max().item<double>();
  out.sigma_min = s.min().item<double>();
  out.kappa = out.sigma_min > 0 ? out.sigma_max / out.sigma_min : kInf;
  const at::Tensor nonzero = m != 0;
  const at::Tensor rows = nonzero.any(1).nonzero().squeeze(1);
  const at::Tensor cols = nonzero.any(0).nonzero().squeeze(1);
  out.kept_rows = rows.numel();
  out.kept_cols = cols.numel();
  if (out.kept_rows == 0 || out.kept_cols == 0) {
    out.sigma_min_kept = 0;
    out.kappa_kept = kInf;
    return out;
  }
  const at::Tensor kept = m.index_select(0, rows).index_select(1, cols);
  out.sigma_min_kept = at::linalg_svdvals(kept).min().item<double>();
  out.kappa_kept = out.sigma_min_kept > 0 ? out.sigma_max / out.sigma_min_kept : kInf;
  return out;
}

}  // namespace pendulum::train::reg
