#include "server/auth/rate_limiter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pendulum::auth {

absl::Status RateLimiter::Acquire(int64_t token_id, const std::string& user) {
  if (!enabled()) return absl::OkStatus();
  const absl::Time now = clock_->Now();
  const double burst = std::max(1.0, options_.burst);
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = buckets_.try_emplace(token_id);
  Bucket& b = it->second;
  if (inserted) {
    b.tokens = burst;
  } else {
    // A clock that steps backwards must not add tokens (or drain them).
    const double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - b.refilled));
    b.tokens = std::min(burst, b.tokens + elapsed * options_.per_second);
  }
  b.refilled = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return absl::OkStatus();
  }
  const double wait = (1.0 - b.tokens) / options_.per_second;
  return absl::ResourceExhaustedError(absl::StrFormat(
      "rate limit exceeded for token %d (user '%s'): at most %g calls/s per token, bursts of %g; "
      "retry in %.3f s (server flags --rate-limit, --rate-burst)",
      token_id, user, options_.per_second, burst, wait));
}

}  // namespace pendulum::auth
