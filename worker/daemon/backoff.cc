#include "worker/daemon/backoff.h"

#include <algorithm>
#include <cmath>

namespace pendulum::daemon {

Backoff::Backoff(BackoffOptions options, uint64_t seed) : options_(options), rng_(seed) {}

absl::Duration Backoff::Next() {
  const double initial = absl::ToDoubleSeconds(options_.initial);
  const double cap = absl::ToDoubleSeconds(options_.max);
  // Exponent capped so the power cannot overflow after many failures.
  const double full = std::min(cap, initial * std::pow(options_.multiplier, std::min(attempt_, 60)));
  ++attempt_;
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return absl::Seconds(full * jitter(rng_));
}

}  // namespace pendulum::daemon
