// UsageLedger: decayed GPU-time per user for fair share.
#include "server/scheduler/usage_ledger.h"

#include "gtest/gtest.h"

namespace pendulum::scheduler {
namespace {

TEST(UsageLedgerTest, AccumulatesGpuSecondsAndHalvesAfterAHalfLife) {
  UsageLedger ledger(absl::Hours(1));
  absl::Time t = absl::FromUnixSeconds(1000000);
  ledger.Advance(t, {{"alice", 2}});
  EXPECT_EQ(ledger.RecentGpuSeconds("alice"), 0);  // first call only starts the clock
  ledger.Advance(t + absl::Seconds(10), {{"alice", 2}});
  EXPECT_NEAR(ledger.RecentGpuSeconds("alice"), 20, 0.05);  // ~2 GPUs × 10 s
  const double before = ledger.RecentGpuSeconds("alice");
  ledger.Advance(t + absl::Seconds(10) + absl::Hours(1), {});
  EXPECT_NEAR(ledger.RecentGpuSeconds("alice"), before / 2, 1e-6);
  EXPECT_EQ(ledger.RecentGpuSeconds("nobody"), 0);
}

TEST(UsageLedgerTest, ManyShortStepsEqualOneLongStep) {
  UsageLedger coarse(absl::Minutes(30)), fine(absl::Minutes(30));
  absl::Time t = absl::FromUnixSeconds(1000000);
  coarse.Advance(t, {});
  fine.Advance(t, {});
  coarse.Advance(t + absl::Hours(1), {{"bob", 1.5}});
  for (int i = 1; i <= 3600; ++i) fine.Advance(t + absl::Seconds(i), {{"bob", 1.5}});
  EXPECT_NEAR(coarse.RecentGpuSeconds("bob"), fine.RecentGpuSeconds("bob"), 1e-6 * coarse.RecentGpuSeconds("bob"));
  EXPECT_LT(coarse.RecentGpuSeconds("bob"), 1.5 * 3600);  // decay during the hour
}

TEST(UsageLedgerTest, TimeGoingBackwardsChangesNothing) {
  UsageLedger ledger;
  absl::Time t = absl::FromUnixSeconds(1000000);
  ledger.Advance(t, {});
  ledger.Advance(t + absl::Seconds(100), {{"a", 1}});
  const double u = ledger.RecentGpuSeconds("a");
  ledger.Advance(t, {{"a", 8}});
  EXPECT_EQ(ledger.RecentGpuSeconds("a"), u);
}

}  // namespace
}  // namespace pendulum::scheduler
