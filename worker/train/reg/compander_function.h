#pragma once
// CompanderFunction: the Weight Compander's w = f(v) (methods.md §4.1, a CHOICE
// family because the paper's function is a GAP; results are "WC-like").
//   tanh   : f(v) = A·tanh(β v / A)                      slope β at 0, |f| < A
//   mulaw  : f(v) = sign(v)·A·ln(1 + μ|v|/A)/ln(1 + μ)   (μ = β), slope μ/ln(1+μ)
//   power  : f(v) = sign(v)·A·((|v| + ε)/A)^p − sign(v)·A·(ε/A)^p  (p = β ∈ (0,1))
// A and β are tensors (scalars), so the learnable variant differentiates through
// them. Pure functions of tensors: thread-compatible.

#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"

namespace pendulum::train::reg {

enum class CompanderFamily { kTanh, kMuLaw, kPower };

// Parses "tanh" (also ""), "mulaw"/"mu_law", "power"; INVALID_ARGUMENT otherwise.
absl::StatusOr<CompanderFamily> ParseCompanderFamily(const std::string& name);
const char* CompanderFamilyName(CompanderFamily family);

struct CompanderFunction {
  CompanderFamily family = CompanderFamily::kTanh;
  double power_eps = 1e-6;  // ε inside the power family (finite slope at 0)

  // f(v); autograd flows to v, a and beta.
  at::Tensor Forward(const at::Tensor& v, const at::Tensor& a, const at::Tensor& beta) const;
  // f⁻¹(w) (no grad needed). tanh clamps |w| to ≤ 0.999·A first (§4.1).
  at::Tensor Inverse(const at::Tensor& w, const at::Tensor& a, const at::Tensor& beta) const;
  // f'(v), analytic (for the saturation metric, trap 4.4.2).
  at::Tensor Derivative(const at::Tensor& v, const at::Tensor& a, const at::Tensor& beta) const;
};

}  // namespace pendulum::train::reg
