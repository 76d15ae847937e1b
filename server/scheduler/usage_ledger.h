#pragma once
// Recent GPU-time per user for fair share: GPU-seconds with exponential decay
// (a GPU-second used one half-life ago counts half), so a user who ran a lot
// yesterday is not penalised today. Not persisted: after a server restart
// everyone starts even, which only shifts the order of equal-priority runs.
// Not thread-safe: the owner calls it under its own lock.

#include <map>
#include <string>

#include "absl/time/time.h"

namespace pendulum::scheduler {

class UsageLedger {
 public:
  explicit UsageLedger(absl::Duration half_life = absl::Hours(2));

  // Accounts the time since the previous call: every user in `gpus_in_use`
  // held that many GPUs (fractions allowed) all along. The first call only
  // sets the start time. Time going backwards is ignored.
  void Advance(absl::Time now, const std::map<std::string, double>& gpus_in_use);

  // Decayed GPU-seconds as of the last Advance(); 0 for unknown users.
  double RecentGpuSeconds(const std::string& user) const;
  const std::map<std::string, double>& usage() const { return usage_; }

 private:
  const double half_life_s_;
  bool started_ = false;
  absl::Time last_;
  std::map<std::string, double> usage_;
};

}  // namespace pendulum::scheduler
