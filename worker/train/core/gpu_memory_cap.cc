#include "worker/train/core/gpu_memory_cap.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#if PENDULUM_WITH_CUDA
#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/util/Exception.h>
#endif

namespace pendulum::train {

absl::StatusOr<double> GpuMemoryFractionFromEnv() {
  const char* text = std::getenv("PENDULUM_GPU_MEMORY_FRACTION");
  if (text == nullptr || *text == '\0') return 0.0;
  double fraction = 0;
  if (!absl::SimpleAtod(text, &fraction) || !(fraction > 0.0 && fraction <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("PENDULUM_GPU_MEMORY_FRACTION: got '", text,
                                                   "', must be a number in (0, 1]"));
  }
  return fraction;
}

absl::StatusOr<std::string> ApplyGpuMemoryCap(double fraction, int cuda_index) {
  if (fraction <= 0.0 || fraction >= 1.0) return std::string();
  if (cuda_index < 0) {
    return absl::StrCat("GPU memory share ", fraction, " not applied: this run trains on the CPU");
  }
#if PENDULUM_WITH_CUDA
  try {
    // LibTorch 2.x creates a device's caching allocator lazily, on the first
    // allocation there; setMemoryFraction before that throws "Allocator not
    // initialized for device" (seen on torch 2.11 / H200). One tiny tensor
    // initialises it, as torch.cuda's lazy init does for Python.
    at::empty({1}, at::TensorOptions().device(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(cuda_index))));
    c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction, static_cast<c10::DeviceIndex>(cuda_index));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("capping CUDA device ", cuda_index, " at a memory share of ", fraction,
                                            " failed: ", e.what_without_backtrace()));
  }
  return absl::StrCat("CUDA caching allocator capped at ", fraction, " of device ", cuda_index, "'s memory");
#else
  return absl::FailedPreconditionError(absl::StrCat(
      "a GPU memory share of ", fraction, " was assigned, but this pendulum-train was built without CUDA LibTorch"));
#endif
}

}  // namespace pendulum::train
