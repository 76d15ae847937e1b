#pragma once
// GPU memory cap for fractional-GPU runs. The scheduler may pack several small
// runs onto one GPU; pendulum-worker then passes each trainer its share in
// PENDULUM_GPU_MEMORY_FRACTION (docs/trainer_protocol.md), and the trainer caps
// LibTorch's CUDA caching allocator at that fraction of the device's memory,
// so one run cannot take the memory its neighbours were promised.
// Called once, from the trainer's thread, after the device is chosen.
#include <string>

#include "absl/status/statusor.h"

namespace pendulum::train {

// The fraction in PENDULUM_GPU_MEMORY_FRACTION: nullopt-like 0 when unset;
// INVALID_ARGUMENT naming the variable when it is not a number in (0, 1].
absl::StatusOr<double> GpuMemoryFractionFromEnv();

// Applies `fraction` (0 = no cap) to CUDA device `cuda_index`; on a CPU run
// (cuda_index < 0) there is nothing to cap. Returns a line for the trainer's
// log saying what was done. FAILED_PRECONDITION when a cap is asked of a
// CUDA device but this build has no CUDA LibTorch.
absl::StatusOr<std::string> ApplyGpuMemoryCap(double fraction, int cuda_index);

}  // namespace pendulum::train
