// SetBlasThreads must reach the OpenBLAS that Debian's LibTorch calls (CI
// installs libopenblas0-pthread): otherwise its pool runs on every core
// whatever the spec's thread count says.
#include "worker/train/core/process_tuning.h"

#include <dlfcn.h>

#include <vector>

#include "gtest/gtest.h"

namespace pendulum::train {
namespace {

TEST(ProcessTuningTest, SetBlasThreadsSizesOpenBlasPool) {
  using GetThreadsFn = int (*)();
  auto* get = reinterpret_cast<GetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (get == nullptr) GTEST_SKIP() << "this LibTorch does not use OpenBLAS";
  ASSERT_TRUE(SetBlasThreads(1));
  EXPECT_EQ(get(), 1);
  ASSERT_TRUE(SetBlasThreads(2));
  EXPECT_EQ(get(), 2);
}

TEST(ProcessTuningTest, TuningMallocKeepsAllocationsWorking) {
  TuneMallocForTraining();
  std::vector<char> big(8 << 20, 'x');  // below the new mmap threshold: from the heap
  EXPECT_EQ(big[123], 'x');
}

}  // namespace
}  // namespace pendulum::train
