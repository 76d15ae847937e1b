// Step time of the MLP on CPU: forward + backward + AdamW step through the
// same pieces pendulum-train uses (Mlp, MakeOptimizer, DataLoader), plus the
// loader's batch build time alone. Prints one JSON object.
//   bench_train_mlp_step [--threads N] [--batch B] [--steps S] [--hidden H]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "worker/train/core/optimizer_factory.h"
#include "worker/train/data/data_loader.h"
#include "worker/train/models/mlp.h"

using namespace pendulum::train;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int threads = 2, batch = 128, steps = 200, hidden = 256;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--hidden")) hidden = std::atoi(argv[i + 1]);
  }
  at::set_num_threads(threads);
  at::manual_seed(0);

  // Fashion-MNIST-shaped uint8 data, normalised by the loader as in training.
  Dataset d;
  d.name = "bench";
  d.num_classes = 10;
  d.example_shape = {1, 28, 28};
  d.images = at::randint(256, {int64_t(batch) * 32, 1, 28, 28}, at::kLong).to(at::kByte);
  d.labels = at::randint(10, {int64_t(batch) * 32}, at::kLong);
  d.mean = {0.286f};
  d.std = {0.353f};
  DataLoaderOptions lo;
  lo.batch_size = batch;
  DataLoader loader(&d, {}, lo);

  MlpOptions mo;
  mo.in_features = 784;
  mo.hidden = {hidden, hidden};
  auto model = std::make_shared<Mlp>(mo);
  pendulum::v1::OptimizerSpec os;
  os.set_type("adamw");
  os.set_lr(1e-3);
  os.set_weight_decay(0.05);
  auto opt = MakeOptimizer(os, *model, nullptr);
  if (!opt.ok()) {
    std::fprintf(stderr, "%s\n", std::string(opt.status().message()).c_str());
    return 1;
  }

  std::vector<double> step_ms, load_ms;
  int64_t epoch = 0;
  loader.StartEpoch(epoch);
  for (int s = 0; s < steps + 10; ++s) {
    auto t0 = Clock::now();
    auto b = loader.Next();
    if (!b) {
      loader.StartEpoch(++epoch);
      b = loader.Next();
    }
    auto t1 = Clock::now();
    (*opt)->zero_grad();
    at::Tensor loss = at::cross_entropy_loss(model->forward(b->x), b->y);
    loss.backward();
    (*opt)->step();
    (void)loss.item<double>();  // the loop reads the loss every step
    auto t2 = Clock::now();
    if (s >= 10) {  // warm-up excluded
      load_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      step_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double mean = 0;
  for (double v : step_ms) mean += v;
  mean /= double(step_ms.size());
  std::printf(
      "{\"bench\": \"train_mlp_step_cpu\", \"model\": \"mlp 784-%d-%d-10\", \"optimizer\": \"adamw\", "
      "\"threads\": %d, \"batch\": %d, \"steps\": %d, \"step_ms_median\": %.4f, \"step_ms_mean\": %.4f, "
      "\"examples_per_s\": %.1f, \"loader_batch_ms_median\": %.4f}\n",
      hidden, hidden, threads, batch, steps, median(step_ms), mean, 1000.0 * batch / median(step_ms),
      median(load_ms));
  return 0;
}
