#pragma once
// What AdamP/SGDP report about their projection (methods.md §3.5), and the
// interface a training loop uses to read it from any optimizer that has it:
//   if (auto* src = dynamic_cast<ProjectionStatsSource*>(opt)) { ... }
// Owned by the optimizer; read between steps on the training thread.

#include <cstdint>
#include <limits>
#include <vector>

#include "worker/train/optim/projection.h"

namespace pendulum::train::optim {

// One parameter tensor in one optimizer step.
struct ParamStepStats {
  int group = 0;   // index into param_groups()
  int index = 0;   // index of the tensor inside its group
  ProjectionOutcome projection;
  // Filled only when detailed stats are on (set_collect_step_stats(true)):
  double norm_before = std::numeric_limits<double>::quiet_NaN();  // ‖w_t‖
  double norm_after = std::numeric_limits<double>::quiet_NaN();   // ‖w_{t+1}‖
  double effective_step = std::numeric_limits<double>::quiet_NaN();  // ‖Δw‖ / ‖w_t‖
  double angle_rad = std::numeric_limits<double>::quiet_NaN();  // ∠(w_t, w_{t+1})
};

// Counters accumulated over steps until ResetProjectionCounters().
struct ProjectionCounters {
  int64_t tested = 0;      // tensor-steps with >= 2 dims (projection test run)
  int64_t channel = 0;     // ... of which the channel view fired
  int64_t layer = 0;       // ... of which the layer view fired
  int64_t not_tested = 0;  // tensor-steps of 1-D tensors
  int64_t tested_numel = 0;     // elements in tested tensor-steps
  int64_t projected_numel = 0;  // elements in projected tensor-steps
  // §3.5 "fraction of parameters projected": by element count over all
  // tensor-steps (1-D tensors count as not projected).
  double FractionProjected(int64_t all_numel) const {
    return all_numel == 0 ? 0.0 : static_cast<double>(projected_numel) / static_cast<double>(all_numel);
  }
};

class ProjectionStatsSource {
 public:
  virtual ~ProjectionStatsSource() = default;
  // Per-tensor results of the most recent step() (tensors without a grad are skipped).
  virtual const std::vector<ParamStepStats>& last_step_stats() const = 0;
  // Counters since construction or the last reset; total_numel counts every
  // element stepped (projected or not), so the fraction is projected/total.
  virtual const ProjectionCounters& projection_counters() const = 0;
  virtual int64_t stepped_numel() const = 0;
  virtual void ResetProjectionCounters() = 0;
  // When on, each step also measures ‖w‖, ‖Δw‖/‖w‖ and the angle (costs one
  // copy of each parameter). Off by default; a loop turns it on for the steps it logs.
  virtual void set_collect_step_stats(bool on) = 0;
};

}  // namespace pendulum::train::optim
