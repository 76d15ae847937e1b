#pragma once
// Backoff: capped exponential reconnect delays with jitter. Attempt n waits a
// uniformly random time in [d/2, d], d = min(max, initial * multiplier^n),
// so a fleet of workers that lost the same server does not reconnect in step.
// Not thread-safe: one per reconnect loop.
#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace pendulum::daemon {

struct BackoffOptions {
  absl::Duration initial = absl::Milliseconds(100);
  absl::Duration max = absl::Seconds(2);  // well under a lease (default 15 s)
  double multiplier = 2.0;
};

class Backoff {
 public:
  explicit Backoff(BackoffOptions options, uint64_t seed = std::random_device{}());
  // The delay before the next attempt; grows with every call up to the cap.
  absl::Duration Next();
  // Back to the initial delay (after a connection that worked).
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  BackoffOptions options_;
  std::mt19937_64 rng_;
  int attempt_ = 0;
};

}  // namespace pendulum::daemon
