#pragma once
// Herding exemplar selection exactly as PyCIL's `_construct_exemplar`
// (methods.md §2.1): features are L2-normalised per sample (φ / (‖φ‖ + 1e-8)),
// μ = mean φ, and for k = 1..m the unselected sample minimising
// ‖μ − (Σ_selected φ + φ_x)/k‖ is picked (ties: the lowest index). Pure; any thread.

#include <cstdint>
#include <vector>

#include <ATen/Tensor.h>

namespace pendulum::train::incremental {

// `features` is [N, D] (raw penultimate features from eval transforms).
// Returns min(m, N) row indices in selection order; a prefix of the result is
// the herding selection for a smaller m, which is how memory shrinks.
std::vector<int64_t> HerdingSelect(const at::Tensor& features, int64_t m);

// Rows of `features` L2-normalised as PyCIL does (norm + 1e-8 in the denominator).
at::Tensor NormalizeFeatures(const at::Tensor& features);

}  // namespace pendulum::train::incremental
