#include "worker/train/optim/projected_optimizer.h"

#include <cmath>

#include <ATen/ATen.h>

#include "worker/train/optim/projection_scalars.h"

namespace pendulum::train::optim {

void ProjectedOptimizer::AppendMetricScalars(std::map<std::string, double>* values) {
  AppendProjectionScalars(*this, metric_names_, values, metric_prefix_);
  ResetProjectionCounters();
  set_collect_step_stats(false);
}

at::Tensor ProjectedOptimizer::SnapshotForStats(const at::Tensor& p) const {
  return collect_step_stats_ ? p.detach().clone() : at::Tensor();
}

void ProjectedOptimizer::RecordParamStats(int group, int index, const at::Tensor& p,
                                          const at::Tensor& before, const ProjectionOutcome& outcome) {
  ParamStepStats s;
  s.group = group;
  s.index = index;
  s.projection = outcome;
  const int64_t numel = p.numel();
  stepped_numel_ += numel;
  switch (outcome.view) {
    case ProjectionView::kNotTested:
      ++counters_.not_tested;
      break;
    case ProjectionView::kNone:
      ++counters_.tested;
      counters_.tested_numel += numel;
      break;
    case ProjectionView::kChannel:
    case ProjectionView::kLayer:
      ++counters_.tested;
      counters_.tested_numel += numel;
      counters_.projected_numel += numel;
      ++(outcome.view == ProjectionView::kChannel ? counters_.channel : counters_.layer);
      break;
  }
  if (before.defined()) {
    // Accumulate in double whatever the parameter dtype.
    at::Tensor w0 = before.to(at::kDouble);
    at::Tensor w1 = p.detach().to(at::kDouble);
    s.norm_before = w0.norm().item<double>();
    s.norm_after = w1.norm().item<double>();
    const double delta = (w1 - w0).norm().item<double>();
    s.effective_step = s.norm_before > 0 ? delta / s.norm_before : std::nan("");
    if (s.norm_before > 0 && s.norm_after > 0) {
      // 2·atan2(‖u0 − u1‖, ‖u0 + u1‖) for unit vectors: stable for tiny angles, unlike acos.
      at::Tensor u0 = w0 / s.norm_before;
      at::Tensor u1 = w1 / s.norm_after;
      s.angle_rad = 2.0 * std::atan2((u0 - u1).norm().item<double>(), (u0 + u1).norm().item<double>());
    }
  }
  last_stats_.push_back(s);
}

}  // namespace pendulum::train::optim
