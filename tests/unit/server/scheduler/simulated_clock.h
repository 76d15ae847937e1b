#pragma once
// SimulatedClock: a Clock that moves only when the test advances it, so
// leases, latencies and timeouts are tested without sleeping. Thread-safe.

#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace pendulum::testing {

class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pendulum::testing
