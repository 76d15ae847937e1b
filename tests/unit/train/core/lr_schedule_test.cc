#include "worker/train/core/lr_schedule.h"

#include <cmath>

#include "gtest/gtest.h"

namespace pendulum::train {
namespace {

TEST(LrScheduleTest, ConstantIsTheBaseRate) {
  v1::ScheduleSpec s;
  auto sched = LrSchedule::Create(s, 0.1, 10, 100);
  ASSERT_TRUE(sched.ok());
  EXPECT_DOUBLE_EQ(sched->At(1), 0.1);
  EXPECT_DOUBLE_EQ(sched->At(100), 0.1);
}

TEST(LrScheduleTest, CosineWithLinearWarmup) {
  v1::ScheduleSpec s;
  s.set_lr_schedule("cosine");
  s.set_warmup_epochs(2);  // 20 steps
  s.set_warmup_lr(0.0);
  s.set_min_lr(0.001);
  auto sched = LrSchedule::Create(s, 0.1, 10, 120);
  ASSERT_TRUE(sched.ok());
  EXPECT_NEAR(sched->At(10), 0.05, 1e-12);   // half-way through warmup
  EXPECT_NEAR(sched->At(20), 0.1, 1e-12);    // warmup ends at the peak
  EXPECT_NEAR(sched->At(70), 0.001 + 0.099 * 0.5, 1e-12);  // cosine midpoint
  EXPECT_NEAR(sched->At(120), 0.001, 1e-12);  // floor at the end
  EXPECT_LT(sched->At(90), sched->At(80));
}

TEST(LrScheduleTest, StepDecaysAtMilestoneEpochs) {
  v1::ScheduleSpec s;
  s.set_lr_schedule("step");
  s.add_milestones(2);
  s.add_milestones(4);
  s.set_gamma(0.5);
  auto sched = LrSchedule::Create(s, 1.0, 10, 100);
  ASSERT_TRUE(sched.ok());
  EXPECT_DOUBLE_EQ(sched->At(20), 1.0);  // last step of epoch 1
  EXPECT_DOUBLE_EQ(sched->At(21), 0.5);  // first step of epoch 2
  EXPECT_DOUBLE_EQ(sched->At(41), 0.25);
}

TEST(LrScheduleTest, UnknownKindNamesTheField) {
  v1::ScheduleSpec s;
  s.set_lr_schedule("exp");
  auto sched = LrSchedule::Create(s, 1.0, 10, 100);
  EXPECT_EQ(sched.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(sched.status().message().find("spec.schedule.lr_schedule"), std::string::npos);
}

}  // namespace
}  // namespace pendulum::train
