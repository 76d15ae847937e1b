#pragma once
// Clock: the one source of time for leases, backoff and timestamps, so tests
// can drive time without sleeping (see tests/fakes/simulated_clock.h).
// Implementations must be safe to call from any thread.

#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pendulum {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  int64_t NowUnixMillis() const { return absl::ToUnixMillis(Now()); }
};

// Wall-clock time. Stateless; RealClock::Get() is a process-wide instance.
class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  static RealClock* Get() {
    static RealClock clock;
    return &clock;
  }
};

}  // namespace pendulum
