#pragma once
// The scale-invariance test and radial projection shared by AdamP and SGDP
// (methods.md §3.1; clovaai/AdamP `_projection`). Stateless, any thread.
//
// For a parameter p with >= 2 dims, views are tried in order: channel
// (size(0), -1) then layer (1, -1). A view fires when
//   max_rows |cos(g_row, p_row)| < delta / sqrt(row_length)
// where g is the RAW gradient (Trap 1). The update u (not the gradient, not
// the moments) then loses its radial part per row of that view:
//   p̂ = p / (‖p‖_row + eps);   u ← u − p̂ · ⟨p̂, u⟩_row
// and the weight decay of that tensor is scaled by wd_ratio.

#include <cstdint>
#include <limits>

#include <ATen/Tensor.h>

namespace pendulum::train::optim {

// Which view of the projection test fired for one tensor in one step.
enum class ProjectionView : int8_t {
  kNotTested = 0,  // fewer than 2 dims: never projected (biases, BN, LN)
  kNone = 1,       // tested on both views, neither fired
  kChannel = 2,    // per output channel (row of size(0) x rest)
  kLayer = 3,      // whole tensor as one row
};

const char* ProjectionViewName(ProjectionView view);

struct ProjectionOutcome {
  ProjectionView view = ProjectionView::kNotTested;
  // max_rows |cos(g, p)| for each view that was evaluated (NaN when not evaluated).
  double max_cos_channel = std::numeric_limits<double>::quiet_NaN();
  double max_cos_layer = std::numeric_limits<double>::quiet_NaN();
  // Multiplier of the weight decay: wd_ratio when projected, else 1.
  double wd_factor = 1.0;
};

// Runs the test for p (dim >= 2) with gradient `grad` and, when a view fires,
// subtracts the radial component from `update` IN PLACE (SGDP relies on this:
// without nesterov its update tensor is the momentum buffer itself). For p
// with fewer than 2 dims returns kNotTested and leaves `update` alone.
// |cos| is computed by hand as |dot| / max(‖a‖·‖b‖, eps) (methods.md §3.6 Trap 6).
ProjectionOutcome ProjectRadial(const at::Tensor& p, const at::Tensor& grad, at::Tensor& update,
                                double delta, double wd_ratio, double eps);

}  // namespace pendulum::train::optim
