#pragma once
// Compact per-weight oscillation tracker for one quantized tensor,
// methods.md §1.5 (Nagel et al.'s definition). State per weight: k_prev int8,
// dir_last int8, f fp16 (or fp32) and count int32: 8 bytes with fp16 f.
// Update() takes the integer codes of the forward pass that is trained
// (trap 8). Training thread only.

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "pendulum/v1/run.pb.h"

namespace pendulum::train::quant {

struct OscillationTrackerOptions {
  double momentum = 0.01;  // EMA momentum m of f
  bool fp16_frequency = true;  // f in fp16 (8 bytes/weight) or fp32 (10)
};

struct OscillationStepStats {
  int64_t numel = 0;
  int64_t flips = 0;         // weights whose code changed this step
  int64_t oscillations = 0;  // reversals this step
};

class OscillationTracker {
 public:
  explicit OscillationTracker(OscillationTrackerOptions options = {});

  // codes: integer-valued tensor (any float/int dtype) of the current step.
  // The first call only initialises k_prev. count_oscillations = false
  // (before OscillationSpec.start_step) updates k_prev and dir_last only.
  OscillationStepStats Update(const at::Tensor& codes, bool count_oscillations = true);

  bool initialized() const { return k_prev_.defined(); }
  // Fraction of weights with f > tau.
  double OscillationRatio(double tau) const;
  // f as float32, same shape as the codes.
  at::Tensor frequency() const;
  const at::Tensor& count() const { return count_; }
  const at::Tensor& k_prev() const { return k_prev_; }
  const at::Tensor& dir_last() const { return dir_last_; }
  int64_t bytes_per_weight() const;

  // Snapshot: histogram of f over [0, hist_max] (hist_max = max(f, 0.05)),
  // top-k by f (ties: higher count, then lower index), and coordinates.
  pendulum::v1::WeightSnapshot Snapshot(int64_t step, const std::string& layer, int top_k, int bins = 50) const;

  // State for checkpoints: {k_prev, dir_last, f, count}; undefined if not initialised.
  std::vector<at::Tensor> State() const;
  void LoadState(const std::vector<at::Tensor>& state);

 private:
  OscillationTrackerOptions options_;
  at::Tensor k_prev_;    // int8
  at::Tensor dir_last_;  // int8 in {-1, 0, +1}
  at::Tensor f_;         // fp16 / fp32
  at::Tensor count_;     // int32
};

}  // namespace pendulum::train::quant
