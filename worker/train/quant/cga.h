#pragma once
// Confidence-guided annealing (CGA), methods.md §1.4 (cga.py). A weight is
// free when its latent code z lies within BR of an interior rounding
// threshold; every other StatsQ block weight is frozen. Per optimizer step:
//   forward, backward → MaskGradients() → optimizer.step() → RestoreFrozen().
// The mask is recomputed at every step from the current weights with a fresh
// scale (trap 5), and frozen values are written back after the step (trap 4),
// which undoes weight decay and momentum drift. Training thread only.

#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace pendulum::train::quant {

// Reference semantics (cga.py freeze_outside_boundary_weight_idx): s = 2·mean|w|
// per row, c = clamp(w/s, −1, float32(0.999999)), b = c·2^(bits−1) − ½, r = round(b);
// returns 1.0 where frozen, 0.0 where 0.5−BR ≤ b−i ≤ 0.5+BR for some integer
// i ∈ [min r, max r) (min/max over the whole tensor). Same dtype as w.
at::Tensor CgaFreezeMask(const at::Tensor& weight, int bits, double boundary_range);

// Same rule on an already computed latent code z (bool, true = free).
at::Tensor CgaFreeMaskFromLatent(const at::Tensor& latent, double boundary_range);

struct CgaTarget {
  std::string name;
  at::Tensor param;  // the latent weight (a leaf parameter), 2-D StatsQ weight
  int bits = 2;
};

class ConfidenceGuidedAnnealing {
 public:
  // boundary_range: BR, 0 < BR < 0.5 (checked by the spec validator; here
  // TORCH_CHECKed).
  ConfidenceGuidedAnnealing(std::vector<CgaTarget> targets, double boundary_range);

  // After backward, before the optimizer step: recompute each mask from the
  // current weights, zero the gradients of frozen entries and save their values.
  void MaskGradients();
  // After the optimizer step: write the saved values back into frozen entries.
  void RestoreFrozen();

  // Fraction of target weights free at the last MaskGradients (all targets).
  double free_fraction() const;
  // Per-target free fraction at the last MaskGradients (same order as targets).
  const std::vector<double>& free_fractions() const { return free_fractions_; }
  const std::vector<CgaTarget>& targets() const { return targets_; }
  double boundary_range() const { return boundary_range_; }

 private:
  std::vector<CgaTarget> targets_;
  double boundary_range_;
  std::vector<at::Tensor> frozen_;  // bool masks of the current step
  std::vector<at::Tensor> saved_;   // weight values before the step
  std::vector<double> free_fractions_;
  int64_t free_count_ = 0;
  int64_t total_count_ = 0;
};

}  // namespace pendulum::train::quant
