#pragma once
// RateLimiter: a token bucket per bearer token, so one runaway script cannot
// starve the server. Each token may make `per_second` calls per second on
// average and up to `burst` in a row; a call beyond that fails with
// RESOURCE_EXHAUSTED saying the limit and when to retry. Buckets are created
// on first use and live as long as the limiter (one small struct per token).
// Threads: thread-safe (one mutex; the critical section is a few arithmetic ops).

#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace pendulum::auth {

struct RateLimitOptions {
  // Sustained calls per second per token; 0 disables the limiter.
  double per_second = 0;
  // Calls a token may make in a burst (bucket size); >= 1 when per_second > 0.
  double burst = 0;
};

class RateLimiter {
 public:
  // `clock` must outlive the limiter.
  RateLimiter(RateLimitOptions options, const Clock* clock) : options_(options), clock_(clock) {}

  bool enabled() const { return options_.per_second > 0; }

  // Takes one call from the bucket of `token_id`. OK, or RESOURCE_EXHAUSTED
  // naming the user, the limit and the wait until the next call is allowed.
  absl::Status Acquire(int64_t token_id, const std::string& user);

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time refilled;
  };
  const RateLimitOptions options_;
  const Clock* clock_;
  absl::Mutex mu_;
  std::map<int64_t, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pendulum::auth
