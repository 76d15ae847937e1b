#include "worker/train/optim/projection_scalars.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace pendulum::train::optim {

void AppendProjectionScalars(const ProjectionStatsSource& source, const std::vector<std::vector<std::string>>& names,
                             std::map<std::string, double>* values, const std::string& prefix) {
  const ProjectionCounters& c = source.projection_counters();
  (*values)[prefix + "/fraction_projected"] = c.FractionProjected(source.stepped_numel());
  if (c.tested > 0) {
    (*values)[prefix + "/channel_share"] = static_cast<double>(c.channel) / static_cast<double>(c.tested);
    (*values)[prefix + "/layer_share"] = static_cast<double>(c.layer) / static_cast<double>(c.tested);
  }
  for (const ParamStepStats& s : source.last_step_stats()) {
    if (s.projection.view == ProjectionView::kNotTested) continue;
    const bool named = s.group < static_cast<int>(names.size()) &&
                       s.index < static_cast<int>(names[static_cast<size_t>(s.group)].size());
    const std::string base = absl::StrCat(
        prefix, "/", named ? names[static_cast<size_t>(s.group)][static_cast<size_t>(s.index)]
                           : absl::StrCat("g", s.group, ".p", s.index));
    double view = 0;
    if (s.projection.view == ProjectionView::kChannel) view = 1;
    if (s.projection.view == ProjectionView::kLayer) view = 2;
    (*values)[base + "/view"] = view;
    const double max_cos =
        s.projection.view == ProjectionView::kChannel ? s.projection.max_cos_channel
        : std::isnan(s.projection.max_cos_layer)       ? s.projection.max_cos_channel
                                                       : s.projection.max_cos_layer;
    (*values)[base + "/max_cos"] = max_cos;
    if (!std::isnan(s.norm_after)) {
      (*values)[base + "/norm"] = s.norm_after;
      (*values)[base + "/effective_step"] = s.effective_step;
      (*values)[base + "/angle"] = s.angle_rad;
    }
  }
}

}  // namespace pendulum::train::optim
