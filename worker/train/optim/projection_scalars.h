#pragma once
// Turns an optimizer's projection statistics (methods.md §3.5) into Scalars
// for the trainer's metric events. A training loop calls, on a metric step:
//   if (auto* src = dynamic_cast<ProjectionStatsSource*>(optimizer)) {
//     AppendProjectionScalars(*src, names, &values);   // after optimizer.step()
//     src->ResetProjectionCounters();
//   }
// and src->set_collect_step_stats(true) before the step it wants ‖Δw‖/‖w‖ for.
// Pure; training thread.

#include <map>
#include <string>
#include <vector>

#include "worker/train/optim/projection_stats.h"

namespace pendulum::train::optim {

// names[g][i] is the name of tensor i of param group g (missing names become
// "g<g>.p<i>"). Adds "adamp/fraction_projected" (by element, since the last
// reset), "adamp/channel_share" and "adamp/layer_share" (of tested
// tensor-steps) and, for every tensor of the last step with >= 2 dims,
// "adamp/<name>/view" (0 none, 1 channel, 2 layer) and "adamp/<name>/max_cos",
// plus "adamp/<name>/norm", "/effective_step" and "/angle" when detailed
// stats were collected. `prefix` replaces "adamp".
void AppendProjectionScalars(const ProjectionStatsSource& source, const std::vector<std::vector<std::string>>& names,
                             std::map<std::string, double>* values, const std::string& prefix = "adamp");

}  // namespace pendulum::train::optim
