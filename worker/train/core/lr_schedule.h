#pragma once
// LrSchedule: the learning rate at each optimizer step, from ScheduleSpec:
//   constant  lr
//   cosine    min_lr + (lr - min_lr) * (1 + cos(pi * t)) / 2 after warmup,
//             t = progress from the end of warmup to total_steps
//   step      lr * gamma^(number of milestones (epochs) passed)
// all preceded by a linear warmup from warmup_lr to lr over warmup_epochs.
// A pure function of the step, so a resumed run gets the same rates. Pure.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"

namespace pendulum::train {

class LrSchedule {
 public:
  // steps_per_epoch >= 1; total_steps >= 1 (the run's last step).
  static absl::StatusOr<LrSchedule> Create(const v1::ScheduleSpec& spec, double base_lr,
                                           int64_t steps_per_epoch, int64_t total_steps);
  // Learning rate for optimizer step `step` (1-based: the step being taken).
  double At(int64_t step) const;

 private:
  enum class Kind { kConstant, kCosine, kStep };
  Kind kind_ = Kind::kConstant;
  double lr_ = 0, min_lr_ = 0, warmup_lr_ = 0, gamma_ = 0.1;
  int64_t warmup_steps_ = 0, total_steps_ = 1, steps_per_epoch_ = 1;
  std::vector<int64_t> milestone_steps_;
};

}  // namespace pendulum::train
