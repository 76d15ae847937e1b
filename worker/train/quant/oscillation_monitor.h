#pragma once
// Model-wide oscillation monitoring (methods.md §1.5): one OscillationTracker
// per quantized weight found in a model (every module implementing
// QuantWeightSource: QuantLinear, QuantConv2d, the QKR product W_qk).
// Call Step() once per training step after the forward pass that is trained
// (the layers hold that pass's codes, trap 8); Stats() every
// logging.oscillation_every_steps and Snapshots() every snapshot_every_steps.
// Training thread only.

#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/serialize/archive.h>

#include "pendulum/v1/events.pb.h"
#include "pendulum/v1/run.pb.h"
#include "worker/train/quant/cga.h"
#include "worker/train/quant/oscillation_tracker.h"
#include "worker/train/quant/quant_weight_view.h"

namespace pendulum::train::quant {

struct OscillationMonitorOptions {
  double momentum = 0.01;
  std::vector<double> thresholds = {0.005, 0.02};
  std::vector<double> low_confidence_ranges = {0.005, 0.01, 0.05};
  int64_t start_step = 0;  // oscillations count from this step on
  bool fp16_frequency = true;
};

// Distance of each latent code to its nearest interior rounding threshold
// (+inf where no interior threshold is adjacent, e.g. a 1-level range).
at::Tensor ThresholdDistance(const QuantWeightView& view);

class OscillationMonitor {
 public:
  explicit OscillationMonitor(OscillationMonitorOptions options = {});

  // Finds the quantized weights of `model` (kept by shared_ptr). Call after the
  // model is built; names are module paths ("blocks.0.attn.qkv").
  void Attach(const std::shared_ptr<torch::nn::Module>& model);

  // Updates every tracker from the codes of the last training forward.
  void Step(int64_t step);

  // Per-layer statistics of the last Step(), plus a "model" aggregate.
  // Layers at ≤ 4 bits also get osc_at_thr_<t>: the fraction of their weights
  // that oscillate (f > thresholds[0]) and sit nearest to threshold t of the
  // latent code (StatsQ: z, where t = -0.5 is W = 0; LSQ: clamp(W/s)).
  // cga (optional) adds cga_free_frac for its targets.
  pendulum::v1::OscillationStats Stats(int64_t step, const ConfidenceGuidedAnnealing* cga = nullptr) const;
  std::vector<pendulum::v1::WeightSnapshot> Snapshots(int64_t step, int top_k) const;

  // Model-wide oscillation ratio at tau over all tracked weights.
  double OscillationRatio(double tau) const;
  // The same over the layers quantized at `bits` only (e.g. the 2-bit block
  // weights, leaving out the 8-bit first layer / patch embedding and heads,
  // which use LSQ in every configuration); 0 when there are none.
  double OscillationRatio(double tau, int bits) const;
  // Fraction of the weights quantized at `bits` whose code changed in the
  // last Step(); 0 when there are none.
  double FlipRate(int bits) const;
  const std::vector<std::string>& layer_names() const { return names_; }
  int64_t tracked_weights() const;

  // Checkpoint state ("<layer>.k_prev", ... under prefix "oscillation/").
  void Save(torch::serialize::OutputArchive& archive) const;
  void Load(torch::serialize::InputArchive& archive);

 private:
  struct Layer {
    std::string name;
    std::shared_ptr<torch::nn::Module> module;
    QuantWeightSource* source = nullptr;
    OscillationTracker tracker;
    OscillationStepStats last;
  };
  OscillationMonitorOptions options_;
  std::vector<Layer> layers_;
  std::vector<std::string> names_;
};

}  // namespace pendulum::train::quant
