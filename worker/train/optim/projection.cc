#include "worker/train/optim/projection.h"

#include <cmath>
#include <vector>

#include <ATen/ATen.h>

namespace pendulum::train::optim {

const char* ProjectionViewName(ProjectionView view) {
  switch (view) {
    case ProjectionView::kNotTested:
      return "not_tested";
    case ProjectionView::kNone:
      return "none";
    case ProjectionView::kChannel:
      return "channel";
    case ProjectionView::kLayer:
      return "layer";
  }
  return "unknown";
}

namespace {

// max over rows of |cos(a_row, b_row)| for a (rows, -1) view.
at::Tensor MaxAbsCosine(const at::Tensor& a, const at::Tensor& b, int64_t rows, double eps) {
  at::Tensor av = a.reshape({rows, -1});
  at::Tensor bv = b.reshape({rows, -1});
  at::Tensor dot = (av * bv).sum(1);
  at::Tensor denom = (av.norm(2, {1}) * bv.norm(2, {1})).clamp_min(eps);
  return (dot / denom).abs().max();
}

}  // namespace

ProjectionOutcome ProjectRadial(const at::Tensor& p, const at::Tensor& grad, at::Tensor& update,
                                double delta, double wd_ratio, double eps) {
  ProjectionOutcome out;
  if (p.dim() < 2) return out;
  out.view = ProjectionView::kNone;

  // Shape that broadcasts one value per view row back over p: (-1, 1, 1, ...).
  std::vector<int64_t> expand(static_cast<size_t>(p.dim()), 1);
  expand[0] = -1;

  const int64_t channel_rows = p.size(0);
  for (ProjectionView view : {ProjectionView::kChannel, ProjectionView::kLayer}) {
    const int64_t rows = view == ProjectionView::kChannel ? channel_rows : 1;
    const int64_t row_len = rows == 0 ? 0 : p.numel() / rows;
    at::Tensor max_cos = MaxAbsCosine(grad, p, rows, eps);
    const double max_cos_value = max_cos.item<double>();
    (view == ProjectionView::kChannel ? out.max_cos_channel : out.max_cos_layer) = max_cos_value;
    // Compared in the tensor's dtype, as the reference does (tensor < python float).
    const double threshold = delta / std::sqrt(static_cast<double>(row_len));
    if (!max_cos.lt(threshold).item<bool>()) continue;

    // AdamP eq. (projection): remove the radial part of the update per row.
    at::Tensor norms = p.reshape({rows, -1}).norm(2, {1}).view(expand);
    at::Tensor p_n = p / norms.add(eps);
    at::Tensor radial = (p_n * update).reshape({rows, -1}).sum(1).view(expand);
    update.sub_(p_n * radial);
    out.view = view;
    out.wd_factor = wd_ratio;
    return out;
  }
  return out;
}

}  // namespace pendulum::train::optim
