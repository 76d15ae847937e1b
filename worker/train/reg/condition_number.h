#pragma once
// Condition-number constraint of TSCNC (methods.md §5.2) and the spectrum
// metrics of §5.4. A conv weight is read as the out × (in·k·k) matrix.
//   slogdet : L_cn = ( log(1e−5 + det(W Wᵀ / out)) )²   (out × out Gram, LibTorch
//             layout; det via slogdet in float64, log(1e−5 + e^ld) via logaddexp)
//   logcond : L_cn = ( log σ_max − log σ_min )²          (SVD in float64)
// Pure functions; differentiable; the result has W's dtype.

#include <cstdint>
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

// σ/κ of the whole matrix, and of its kept part. Pruning (HYDRA masks, closed
// L0 gates) zeroes whole rows or columns; each one adds an exact zero singular
// value, so the whole-matrix κ of a pruned layer is ∞ and says nothing about how
// well conditioned the surviving weights are. methods.md §5.4 does not say how
// to report it; the *_kept values drop every all-zero row and every all-zero
// column (out × in·k·k layout) first. Removing zero rows/columns removes only
// zero singular values, so σ_max is unchanged and σ_min_kept is the smallest of
// the min(kept_rows, kept_cols) singular values of the submatrix: still 0 (κ_kept
// = ∞) when the kept weights themselves are rank deficient.
struct SpectrumStats {
  double sigma_max = 0;
  double sigma_min = 0;       // smallest of the min(out, in) singular values
  double kappa = 0;           // σ_max/σ_min (inf when σ_min = 0)
  int64_t kept_rows = 0;      // rows (outputs) with a non-zero weight
  int64_t kept_cols = 0;      // columns (inputs · k · k) with a non-zero weight
  double sigma_min_kept = 0;  // smallest singular value of the kept submatrix (0 if empty)
  double kappa_kept = 0;      // σ_max/σ_min_kept (inf when σ_min_kept = 0 or nothing is kept)
};
SpectrumStats MatrixSpectrum(const at::Tensor& w);

}  // namespace pendulum::train::reg
