#pragma once
// Condition-number constraint of TSCNC (methods.md §5.2) and the spectrum
// metrics of §5.4. A conv weight is read as the out × (in·k·k) matrix.
//   slogdet : L_cn = ( log(1e−5 + det(W Wᵀ / out)) )²   (out × out Gram, LibTorch
//             layout; det via slogdet in float64, log(1e−5 + e^ld) via logaddexp)
//   logcond : L_cn = ( log σ_max − log σ_min )²          (SVD in float64)
// Pure functions; differentiable; the result has W's dtype.

#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"

namespace pendulum::train::reg {

enum class CnForm { kSlogdet, kLogCond };
absl::StatusOr<CnForm> ParseCnForm(const std::string& name);  // "", slogdet, logcond

at::Tensor AsMatrix(const at::Tensor& w);  // out × rest
// log det(W Wᵀ / out) in float64 via slogdet (−inf for a singular Gram).
at::Tensor GramLogDet(const at::Tensor& w);
at::Tensor CnLoss(const at::Tensor& w, CnForm form);

struct SpectrumStats {
  double sigma_max = 0;
  double sigma_min = 0;  // smallest of the min(out, in) singular values
  double kappa = 0;      // σ_max/σ_min (inf when σ_min = 0)
};
SpectrumStats MatrixSpectrum(const at::Tensor& w);

}  // namespace pendulum::train::reg
