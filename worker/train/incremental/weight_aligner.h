#pragma once
// Weight Aligning (Zhao et al., CVPR 2020; methods.md §2.1) and the
// official code's weight clipping. Both modify the classifier weight in place
// under NoGradGuard; the bias is never touched (§2.5 Trap 1). Any thread that
// owns the tensor.

#include <cstdint>

#include <ATen/Tensor.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)

namespace pendulum::train::incremental {

struct WeightAlignOptions {
  // Row norm used for γ: 1 (official code default) or 2 (PyCIL, our default).
  int norm = 2;
  // Clamp γ ≤ 1 (official code). Default off (PyCIL).
  bool clamp_gamma_le_1 = false;
};

struct WeightAlignResult {
  double gamma = 1;  // the factor applied to the new rows (after any clamp)
  double raw_gamma = 1;  // mean old norm / mean new norm before any clamp
  double mean_old_norm_before = 0, mean_new_norm_before = 0;
  double mean_old_norm_after = 0, mean_new_norm_after = 0;
};

// γ = mean_{i<C_o} ‖W_i‖ / mean_{i≥C_o} ‖W_i‖;  W_i ← γ·W_i for the new rows i ≥ C_o.
// `weight` is the classifier weight [C, D]; 0 < known_classes < C, else
// nothing is aligned and γ = 1 (stage 0 has no old classes).
WeightAlignResult AlignWeights(at::Tensor& weight, int64_t known_classes, const WeightAlignOptions& options);

// Mean row norm (L1 or L2) of rows [begin, end) of `weight`; 0 for an empty range.
double MeanRowNorm(const at::Tensor& weight, int64_t begin, int64_t end, int norm);

// W ← max(W, 0), after every optimizer step (official code, §2.1; Trap 3).
void ClipWeightsNonNegative(at::Tensor& weight);

}  // namespace pendulum::train::incremental
