#include "worker/train/core/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace pendulum::train {

absl::StatusOr<LrSchedule> LrSchedule::Create(const v1::ScheduleSpec& spec, double base_lr,
                                              int64_t steps_per_epoch, int64_t total_steps) {
  LrSchedule s;
  const std::string& kind = spec.lr_schedule();
  if (kind.empty() || kind == "constant") {
    s.kind_ = Kind::kConstant;
  } else if (kind == "cosine") {
    s.kind_ = Kind::kCosine;
  } else if (kind == "step") {
    s.kind_ = Kind::kStep;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("spec.schedule.lr_schedule: got '", kind,
                                                   "', allowed: constant, cosine, step"));
  }
  s.lr_ = base_lr;
  s.min_lr_ = spec.min_lr();
  s.warmup_lr_ = spec.warmup_lr();
  s.gamma_ = spec.gamma() > 0 ? spec.gamma() : 0.1;
  s.steps_per_epoch_ = std::max<int64_t>(1, steps_per_epoch);
  s.total_steps_ = std::max<int64_t>(1, total_steps);
  s.warmup_steps_ = std::llround(spec.warmup_epochs() * double(s.steps_per_epoch_));
  for (uint32_t m : spec.milestones()) s.milestone_steps_.push_back(int64_t(m) * s.steps_per_epoch_);
  return s;
}

double LrSchedule::At(int64_t step) const {
  if (warmup_steps_ > 0 && step <= warmup_steps_) {
    // Linear from warmup_lr at step 0 to lr at the last warmup step.
    return warmup_lr_ + (lr_ - warmup_lr_) * double(step) / double(warmup_steps_);
  }
  switch (kind_) {
    case Kind::kConstant:
      return lr_;
    case Kind::kCosine: {
      const double span = double(std::max<int64_t>(1, total_steps_ - warmup_steps_));
      const double t = std::clamp(double(step - warmup_steps_) / span, 0.0, 1.0);
      return min_lr_ + (lr_ - min_lr_) * 0.5 * (1.0 + std::cos(M_PI * t));
    }
    case Kind::kStep: {
      double lr = lr_;
      // Milestone m (epochs) applies from the first step of epoch m on.
      for (int64_t m : milestone_steps_) {
        if (step > m) lr *= gamma_;
      }
      return lr;
    }
  }
  return lr_;
}

}  // namespace pendulum::train
