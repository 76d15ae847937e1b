#pragma once
// GpuProbe: the host's GPUs through NVML, loaded at run time with dlopen
// (libnvidia-ml.so.1), so the daemon has no build dependency on CUDA and runs
// unchanged on hosts without a GPU driver (available() is then false).
// Thread-safe after construction (NVML itself is thread-safe).
#include <memory>
#include <string>
#include <vector>

#include "pendulum/v1/run_service.pb.h"

namespace pendulum::daemon {

class GpuProbe {
 public:
  // Tries to load and initialise NVML; never fails (see available()).
  GpuProbe();
  ~GpuProbe();
  GpuProbe(const GpuProbe&) = delete;
  GpuProbe& operator=(const GpuProbe&) = delete;

  bool available() const { return lib_ != nullptr; }
  // Why NVML is not available ("libnvidia-ml.so.1: cannot open ..."), for logs.
  const std::string& unavailable_reason() const { return reason_; }
  // One entry per GPU: index, name, memory, utilization, memory used.
  std::vector<v1::GpuInfo> Query() const;

 private:
  struct Api;
  void* lib_ = nullptr;
  std::unique_ptr<Api> api_;
  std::string reason_;
};

// `count` placeholder GPUs (index 0..count-1, name "fake-gpu") for --gpus N on
// hosts without NVML; the indices still become CUDA_VISIBLE_DEVICES.
std::vector<v1::GpuInfo> FakeGpus(int count);

}  // namespace pendulum::daemon
