#include "worker/daemon/backoff.h"

#include "gtest/gtest.h"

namespace pendulum::daemon {
namespace {

TEST(BackoffTest, GrowsExponentiallyWithinJitterBounds) {
  Backoff backoff(BackoffOptions{absl::Milliseconds(100), absl::Seconds(10), 2.0}, /*seed=*/42);
  for (int n = 0; n < 6; ++n) {
    const double full = 0.1 * (1 << n);
    const double got = absl::ToDoubleSeconds(backoff.Next());
    EXPECT_GE(got, full / 2 - 1e-9) << "attempt " << n;
    EXPECT_LE(got, full + 1e-9) << "attempt " << n;
  }
}

TEST(BackoffTest, IsCappedAndResets) {
  Backoff backoff(BackoffOptions{absl::Milliseconds(100), absl::Seconds(1), 2.0}, 7);
  for (int n = 0; n < 100; ++n) EXPECT_LE(backoff.Next(), absl::Seconds(1));
  EXPECT_GE(backoff.Next(), absl::Milliseconds(500));  // still at the cap, jittered
  backoff.Reset();
  EXPECT_LE(backoff.Next(), absl::Milliseconds(100));
}

TEST(BackoffTest, JitterSpreadsWorkersApart) {
  Backoff a(BackoffOptions{}, 1), b(BackoffOptions{}, 2);
  bool differ = false;
  for (int n = 0; n < 5; ++n) differ |= a.Next() != b.Next();
  EXPECT_TRUE(differ);
}

}  // namespace
}  // namespace pendulum::daemon
