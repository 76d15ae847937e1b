// GPU memory share of fractional-GPU runs: env parsing and what is applied.
#include "worker/train/core/gpu_memory_cap.h"

#include <cstdlib>

#include "gtest/gtest.h"

namespace pendulum::train {
namespace {

class GpuMemoryCapTest : public ::testing::Test {
 protected:
  void TearDown() override { ::unsetenv("PENDULUM_GPU_MEMORY_FRACTION"); }
};

TEST_F(GpuMemoryCapTest, UnsetMeansNoCap) {
  ::unsetenv("PENDULUM_GPU_MEMORY_FRACTION");
  auto f = GpuMemoryFractionFromEnv();
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*f, 0.0);
  auto applied = ApplyGpuMemoryCap(*f, 0);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, "");
}

TEST_F(GpuMemoryCapTest, ParsesAShareAndRejectsNonsenseNamingTheVariable) {
  ::setenv("PENDULUM_GPU_MEMORY_FRACTION", "0.25", 1);
  auto f = GpuMemoryFractionFromEnv();
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_DOUBLE_EQ(*f, 0.25);
  for (const char* bad : {"abc", "0", "-0.5", "1.5", "nan"}) {
    ::setenv("PENDULUM_GPU_MEMORY_FRACTION", bad, 1);
    auto parsed = GpuMemoryFractionFromEnv();
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.status().message().find("PENDULUM_GPU_MEMORY_FRACTION"), std::string::npos);
    EXPECT_NE(parsed.status().message().find(bad), std::string::npos) << parsed.status();
  }
}

TEST_F(GpuMemoryCapTest, ACpuRunSaysTheShareIsNotApplied) {
  auto applied = ApplyGpuMemoryCap(0.5, -1);
  ASSERT_TRUE(applied.ok());
  EXPECT_NE(applied->find("not applied"), std::string::npos) << *applied;
}

#if !PENDULUM_WITH_CUDA
TEST_F(GpuMemoryCapTest, ACudaShareWithoutCudaLibTorchFailsLoudly) {
  auto applied = ApplyGpuMemoryCap(0.5, 0);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition);
}
#endif

}  // namespace
}  // namespace pendulum::train
