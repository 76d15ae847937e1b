// --precision on a CPU host: auto means fp32, bf16 is refused with a reason,
// anything else names the allowed values; a trainer asked for bf16 on the CPU
// fails at setup with exit 2 instead of silently training in fp32.
#include "worker/train/core/autocast_scope.h"

#include "gtest/gtest.h"
#include "tests/support/test_paths.h"
#include "tests/unit/train/run_trainer.h"
#include "worker/train/core/trainer.h"

namespace pendulum::train {
namespace {

const c10::Device kCpu(c10::kCPU);

TEST(PrecisionTest, AutoAndFp32MeanFloat32OnTheCpu) {
  EXPECT_EQ(*ResolvePrecision("auto", kCpu), Precision::kFloat32);
  EXPECT_EQ(*ResolvePrecision("", kCpu), Precision::kFloat32);
  EXPECT_EQ(*ResolvePrecision("fp32", kCpu), Precision::kFloat32);
  EXPECT_EQ(*ResolvePrecision("auto", c10::Device(c10::kCUDA, 0)), Precision::kBf16Autocast);
}

TEST(PrecisionTest, Bf16OnTheCpuAndUnknownValuesAreErrorsThatSayWhy) {
  auto bf16 = ResolvePrecision("bf16", kCpu);
  ASSERT_FALSE(bf16.ok());
  EXPECT_EQ(bf16.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(bf16.status().message().find("CUDA"), std::string::npos) << bf16.status();
  auto half = ResolvePrecision("fp16", kCpu);
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.status().message().find("'fp16'"), std::string::npos) << half.status();
  EXPECT_NE(half.status().message().find("auto, fp32, bf16"), std::string::npos) << half.status();
}

TEST(PrecisionTest, AnFp32ScopeLeavesAutocastOff) {
  AutocastScope scope(Precision::kFloat32);
  EXPECT_FALSE(AutocastScope::CudaAutocastEnabled());
}

TEST(PrecisionTest, TrainerAskedForBf16OnTheCpuFailsAtSetupWithExit2) {
  auto dir = pendulum::testing::MakeTestTempDir();
  v1::RunSpec s;
  s.set_name("bf16-on-cpu");
  s.mutable_model()->set_arch("mlp");
  s.mutable_model()->add_hidden(8);
  s.mutable_data()->set_dataset("synthetic");
  s.mutable_optimizer()->set_type("sgd");
  s.mutable_optimizer()->set_lr(0.1);
  s.mutable_schedule()->set_max_steps(2);
  s.mutable_schedule()->set_batch_size(8);
  TrainerOptions o;
  o.spec = s;
  o.precision = "bf16";
  TrainResult r = testing::RunTrainerInDir(dir, o);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.status.message().find("bf16"), std::string::npos) << r.status;
}

}  // namespace
}  // namespace pendulum::train
