#include "server/scheduler/usage_ledger.h"

#include <algorithm>
#include <cmath>

namespace pendulum::scheduler {

UsageLedger::UsageLedger(absl::Duration half_life)
    : half_life_s_(std::max(1.0, absl::ToDoubleSeconds(half_life))) {}

void UsageLedger::Advance(absl::Time now, const std::map<std::string, double>& gpus_in_use) {
  if (!started_ || now <= last_) {
    if (!started_) last_ = now;
    started_ = true;
    return;
  }
  const double dt = absl::ToDoubleSeconds(now - last_);
  last_ = now;
  const double lambda = std::log(2.0) / half_life_s_;
  const double decay = std::exp(-lambda * dt);
  // Exact integral of a constant rate g under decay over [0, dt]:
  // g * (1 - e^{-λ dt}) / λ, so many short steps equal one long step.
  const double gain = (1.0 - decay) / lambda;
  for (auto it = usage_.begin(); it != usage_.end();) {
    it->second *= decay;
    if (it->second < 1e-6 && gpus_in_use.count(it->first) == 0) {
      it = usage_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [user, gpus] : gpus_in_use) {
    if (gpus > 0) usage_[user] += gpus * gain;
  }
}

double UsageLedger::RecentGpuSeconds(const std::string& user) const {
  auto it = usage_.find(user);
  return it == usage_.end() ? 0.0 : it->second;
}

}  // namespace pendulum::scheduler
