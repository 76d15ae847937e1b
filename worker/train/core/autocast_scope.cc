#include "worker/train/core/autocast_scope.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "absl/strings/str_cat.h"

// LibTorch 2.4 replaced set_enabled/set_autocast_gpu_dtype by per-device-type calls.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define PENDULUM_AUTOCAST_PER_DEVICE 1
#else
#define PENDULUM_AUTOCAST_PER_DEVICE 0
#endif

namespace pendulum::train {
namespace {

bool CudaEnabled() {
#if PENDULUM_AUTOCAST_PER_DEVICE
  return at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_enabled();
#endif
}

void SetCudaEnabled(bool on) {
#if PENDULUM_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_enabled(at::kCUDA, on);
#else
  at::autocast::set_enabled(on);
#endif
}

at::ScalarType CudaDtype() {
#if PENDULUM_AUTOCAST_PER_DEVICE
  return at::autocast::get_autocast_dtype(at::kCUDA);
#else
  return at::autocast::get_autocast_gpu_dtype();
#endif
}

void SetCudaDtype(at::ScalarType t) {
#if PENDULUM_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_dtype(at::kCUDA, t);
#else
  at::autocast::set_autocast_gpu_dtype(t);
#endif
}

}  // namespace

absl::StatusOr<Precision> ResolvePrecision(const std::string& requested, const c10::Device& device) {
  if (requested.empty() || requested == "auto") {
    return device.is_cuda() ? Precision::kBf16Autocast : Precision::kFloat32;
  }
  if (requested == "fp32") return Precision::kFloat32;
  if (requested == "bf16") {
    if (!device.is_cuda()) {
      return absl::FailedPreconditionError(
          "precision bf16 needs a CUDA device, but this run trains on the CPU (use auto or fp32)");
    }
    return Precision::kBf16Autocast;
  }
  return absl::InvalidArgumentError(absl::StrCat("precision: got '", requested, "', must be one of: auto, fp32, bf16"));
}

const char* PrecisionName(Precision p) {
  return p == Precision::kBf16Autocast ? "bf16 autocast" : "fp32";
}

AutocastScope::AutocastScope(Precision precision) {
  if (precision != Precision::kBf16Autocast) return;
  active_ = true;
  was_enabled_ = CudaEnabled();
  previous_dtype_ = static_cast<int>(CudaDtype());
  SetCudaEnabled(true);
  SetCudaDtype(at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // Leaving the outermost scope drops the cached bf16 copies of the weights,
  // which would otherwise be stale after the optimizer step.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetCudaEnabled(was_enabled_);
  SetCudaDtype(static_cast<at::ScalarType>(previous_dtype_));
}

bool AutocastScope::CudaAutocastEnabled() { return CudaEnabled(); }

}  // namespace pendulum::train
