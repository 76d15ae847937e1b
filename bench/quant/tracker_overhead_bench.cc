// Oscillation-tracker overhead as a fraction of a training step (methods.md
// §1.5; issue 4 goal ≤ 5 % on CPU). Model: the quantized tiny ViT
// (vit_tiny28, W2A2 StatsQ), batch 64, AdamW, torch threads from argv[1]
// (default 2). Times steps with and without OscillationMonitor::Step, and the
// per-layer statistics (amortised over oscillation_every_steps = 50).
// Wall and process-CPU times are both reported: on a shared, loaded machine
// the CPU-time ratio (exact with 1 thread) is the meaningful one.
// Prints one JSON object.

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>

#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>

#include "worker/train/models/vit.h"
#include "worker/train/quant/oscillation_monitor.h"

using Clock = std::chrono::steady_clock;

static double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int steps = argc > 2 ? std::atoi(argv[2]) : 30;
  const int64_t batch = 64;
  at::set_num_threads(threads);
  at::manual_seed(0);
  pendulum::v1::ModelSpec spec;
  spec.set_arch("vit_tiny28");
  pendulum::v1::OfqMethod ofq;
  ofq.set_weight_quantizer("statsq");
  ofq.set_weight_bits(2);
  ofq.set_act_bits(2);
  pendulum::train::ModelInputs in;
  in.num_classes = 10;
  in.example_shape = {1, 28, 28};
  auto made = pendulum::train::MakeViT(spec, in, &ofq);
  if (!made.ok()) {
    std::fprintf(stderr, "%s\n", made.status().ToString().c_str());
    return 1;
  }
  auto model = *made;
  model->train();
  at::Tensor x = at::randn({batch, 1, 28, 28});
  at::Tensor y = at::randint(0, 10, {batch});
  model->Forward(x);  // creates the LSQ scales (trap 9)
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  pendulum::train::quant::OscillationMonitor monitor;
  monitor.Attach(model);

  auto train_step = [&]() {
    opt.zero_grad();
    at::cross_entropy_loss(model->Forward(x).logits, y).backward();
    opt.step();
  };
  for (int i = 0; i < 3; ++i) train_step();
  monitor.Step(0);

  double step_s = 0, track_s = 0, stats_s = 0;
  double step_cpu = 0, track_cpu = 0;
  for (int i = 1; i <= steps; ++i) {
    auto t0 = Clock::now();
    const std::clock_t c0 = std::clock();
    train_step();
    auto t1 = Clock::now();
    const std::clock_t c1 = std::clock();
    monitor.Step(i);
    auto t2 = Clock::now();
    const std::clock_t c2 = std::clock();
    step_s += Seconds(t0, t1);
    track_s += Seconds(t1, t2);
    step_cpu += double(c1 - c0) / CLOCKS_PER_SEC;
    track_cpu += double(c2 - c1) / CLOCKS_PER_SEC;
  }
  const int stats_reps = 5;
  auto t3 = Clock::now();
  for (int i = 0; i < stats_reps; ++i) monitor.Stats(steps);
  auto t4 = Clock::now();
  stats_s = Seconds(t3, t4) / stats_reps;
  const double step_ms = step_s / steps * 1e3;
  const double track_ms = track_s / steps * 1e3;
  const double stats_ms = stats_s * 1e3;
  std::printf(
      "{\"bench\":\"ofq_tracker_overhead\",\"model\":\"vit_tiny28 W2A2 statsq\",\"batch\":%lld,"
      "\"threads\":%d,\"steps\":%d,\"tracked_weights\":%lld,\"bytes_per_weight\":8,"
      "\"train_step_ms\":%.3f,\"tracker_step_ms\":%.3f,\"stats_ms\":%.3f,"
      "\"overhead_pct\":%.3f,\"overhead_with_stats_every_50_pct\":%.3f,"
      "\"train_step_cpu_ms\":%.3f,\"tracker_step_cpu_ms\":%.3f,\"overhead_cpu_pct\":%.3f}\n",
      static_cast<long long>(batch), threads, steps, static_cast<long long>(monitor.tracked_weights()), step_ms,
      track_ms, stats_ms, 100.0 * track_ms / step_ms, 100.0 * (track_ms + stats_ms / 50.0) / step_ms,
      step_cpu / steps * 1e3, track_cpu / steps * 1e3, 100.0 * track_cpu / step_cpu);
  return 0;
}
