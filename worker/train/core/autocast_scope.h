// AutocastScope: bf16 mixed precision for the forward pass on CUDA (OFQ
// issue 4, "bf16 autocast on CUDA"), as torch.autocast("cuda", bfloat16) does
// in Python. Matmuls, linears and convolutions run in bf16; reductions,
// softmax and losses stay in float32; parameters and optimizer state stay
// float32. The backward pass runs outside the scope, as in Python.
//
// Precision choice (pendulum-train --precision): "auto" (default) = bf16 on
// CUDA, float32 on CPU; "fp32" = never autocast; "bf16" = autocast, and an
// error on a CPU device (CPU bf16 is slower than float32 on these machines).
//
// The LibTorch API for this changed in 2.4 (per-device setters); both are
// handled here so the trainer builds against Debian's 1.13 and a CUDA 2.x.
// Thread-local: a scope affects the thread that opened it only.
#pragma once

#include <string>

#include <c10/core/Device.h>

#include "absl/status/statusor.h"

namespace pendulum::train {

enum class Precision { kFloat32, kBf16Autocast };

// "auto" | "fp32" | "bf16" on `device` -> what the trainer uses, or an error naming the value.
absl::StatusOr<Precision> ResolvePrecision(const std::string& requested, const c10::Device& device);
const char* PrecisionName(Precision p);

class AutocastScope {
 public:
  // Does nothing unless `precision` is kBf16Autocast.
  explicit AutocastScope(Precision precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

  // Whether CUDA autocast is on for this thread now (tests).
  static bool CudaAutocastEnabled();

 private:
  bool active_ = false;
  bool was_enabled_ = false;
  int previous_dtype_ = 0;  // at::ScalarType, stored as int to keep ATen out of this header
};

}  // namespace pendulum::train
