#pragma once
// The transformed sparse constraint of TSCNC (methods.md §5.1).
// x_g ≤ 0 is the (negated) expected L0/L2 prior of gate group g. The code form
// uses x without an absolute value: TSC = (a+1)x/(a+x) = −(a+1)|x|/(a−|x|), a
// convex penalty with a pole at |x| = a. The tl1_abs form is the standard
// transformed-L1 (a+1)|x|/(a+|x|), which saturates. Pure functions.

#include <string>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pendulum::train::reg {

enum class TscForm {
  kNone,    // baseline: the plain L0/L2 prior, penalty |x| (HYDRA baseline, iscloss = false)
  kCode,    // (a+1)x/(a+x), the released code (default)
  kTl1Abs,  // (a+1)|x|/(a+|x|)
};

absl::StatusOr<TscForm> ParseTscForm(const std::string& name);  // "", code, tl1_abs, none

// TSC_g exactly as written in §5.1 for each form (kNone returns x).
at::Tensor TscValue(const at::Tensor& x, double a, TscForm form);
// The non-negative penalty per group whose sum, times λ_s/N, enters R:
// code: −TSC = (a+1)|x|/(a−|x|); tl1_abs: TSC; none: |x|.
at::Tensor TscPenalty(const at::Tensor& x, double a, TscForm form);
// Pole guard (§5.1): FAILED_PRECONDITION naming the layer when max|x|/a ≥ limit
// (0.9) for the code form, where the penalty would approach its pole.
absl::Status CheckTscPole(const at::Tensor& x, double a, TscForm form, const std::string& layer,
                          double limit = 0.9);

}  // namespace pendulum::train::reg
