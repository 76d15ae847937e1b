// RateLimiter: token bucket per bearer token, on a simulated clock.
#include "server/auth/rate_limiter.h"

#include "gtest/gtest.h"
#include "tests/unit/server/scheduler/simulated_clock.h"

namespace pendulum::auth {
namespace {

using pendulum::testing::SimulatedClock;

TEST(RateLimiterTest, BurstIsAllowedThenTheNextCallIsResourceExhaustedWithAClearMessage) {
  SimulatedClock clock;
  RateLimiter limiter({/*per_second=*/10, /*burst=*/5}, &clock);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.Acquire(7, "alice").ok()) << "call " << i;
  absl::Status s = limiter.Acquire(7, "alice");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("rate limit exceeded for token 7 (user 'alice')"), std::string::npos) << s;
  EXPECT_NE(s.message().find("10 calls/s"), std::string::npos) << s;
  EXPECT_NE(s.message().find("retry in 0.100 s"), std::string::npos) << s;
}

TEST(RateLimiterTest, BucketRefillsAtTheRateAndNeverAboveTheBurst) {
  SimulatedClock clock;
  RateLimiter limiter({10, 5}, &clock);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(limiter.Acquire(1, "u").ok());
  ASSERT_FALSE(limiter.Acquire(1, "u").ok());
  clock.Advance(absl::Milliseconds(250));  // 2.5 calls' worth
  EXPECT_TRUE(limiter.Acquire(1, "u").ok());
  EXPECT_TRUE(limiter.Acquire(1, "u").ok());
  EXPECT_FALSE(limiter.Acquire(1, "u").ok());
  clock.Advance(absl::Hours(1));  // refills to the burst, not 36000 calls
  int allowed = 0;
  while (limiter.Acquire(1, "u").ok()) ++allowed;
  EXPECT_EQ(allowed, 5);
}

TEST(RateLimiterTest, EachTokenHasItsOwnBucket) {
  SimulatedClock clock;
  RateLimiter limiter({1, 2}, &clock);
  EXPECT_TRUE(limiter.Acquire(1, "runaway").ok());
  EXPECT_TRUE(limiter.Acquire(1, "runaway").ok());
  EXPECT_FALSE(limiter.Acquire(1, "runaway").ok());
  EXPECT_TRUE(limiter.Acquire(2, "bob").ok()) << "another token is not starved by the runaway one";
  EXPECT_TRUE(limiter.Acquire(2, "bob").ok());
}

TEST(RateLimiterTest, ZeroRateDisablesTheLimiter) {
  SimulatedClock clock;
  RateLimiter limiter({0, 0}, &clock);
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(limiter.Acquire(1, "u").ok());
}

TEST(RateLimiterTest, ClockSteppingBackDoesNotRefill) {
  SimulatedClock clock;
  RateLimiter limiter({1, 1}, &clock);
  ASSERT_TRUE(limiter.Acquire(1, "u").ok());
  clock.Advance(-absl::Seconds(10));
  EXPECT_FALSE(limiter.Acquire(1, "u").ok());
}

}  // namespace
}  // namespace pendulum::auth
