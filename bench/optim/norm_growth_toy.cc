// methods.md §7.3 (a): the 2-D norm-growth toy. Maximise cos(w, w*) from
// ‖w₀‖ = 1 for 500 steps with momentum SGD (μ = 0.9, 0.99) and with SGDP
// (same μ). The loss is scale-invariant, so its gradient is orthogonal to w
// and momentum can only push ‖w‖ up; SGDP removes that radial part.
// Prints one JSON object: per optimizer the final ‖w‖, the final cosine and
// the first step with cos ≥ 0.99 (−1 if never). The project page reports
// ‖w‖ 1 → 2.93 (μ 0.9) and → 27.87 (μ 0.99) for momentum SGD in its setting.
//   bench/optim/norm_growth_toy [steps=500] [lr=0.1]

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)
#include <ATen/Parallel.h>
#include <torch/optim/sgd.h>

#include "worker/train/optim/sgdp.h"

namespace {

struct Result {
  std::string name;
  double final_norm = 0;
  double final_cos = 0;
  int64_t steps_to_099 = -1;
};

Result Run(const std::string& name, bool sgdp, double momentum, int64_t steps, double lr) {
  // w [1, 2]: one "channel", so SGDP's channel view applies (1-D tensors are never projected).
  at::Tensor w = at::tensor({1.0, 0.0}, at::kDouble).reshape({1, 2}).set_requires_grad(true);
  const at::Tensor target = at::tensor({-0.6, 0.8}, at::kDouble).reshape({1, 2});  // 127° away
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (sgdp) {
    opt = std::make_unique<pendulum::train::optim::SGDP>(std::vector<at::Tensor>{w},
                                                           pendulum::train::optim::SGDPOptions(lr).momentum(momentum));
  } else {
    opt = std::make_unique<torch::optim::SGD>(std::vector<at::Tensor>{w}, torch::optim::SGDOptions(lr).momentum(momentum));
  }
  Result r;
  r.name = name;
  for (int64_t t = 1; t <= steps; ++t) {
    opt->zero_grad();
    at::Tensor cos = (w * target).sum() / (w.norm() * target.norm());
    (-cos).backward();
    opt->step();
    at::NoGradGuard no_grad;
    const double c = ((w * target).sum() / (w.norm() * target.norm())).item<double>();
    if (r.steps_to_099 < 0 && c >= 0.99) r.steps_to_099 = t;
    r.final_cos = c;
  }
  r.final_norm = w.norm().item<double>();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t steps = argc > 1 ? std::atoll(argv[1]) : 500;
  const double lr = argc > 2 ? std::atof(argv[2]) : 0.1;
  at::set_num_threads(1);
  std::vector<Result> results = {
      Run("sgd_momentum_0.9", false, 0.9, steps, lr), Run("sgd_momentum_0.99", false, 0.99, steps, lr),
      Run("sgdp_momentum_0.9", true, 0.9, steps, lr), Run("sgdp_momentum_0.99", true, 0.99, steps, lr)};
  std::printf("{\"bench\": \"norm_growth_toy\", \"steps\": %lld, \"lr\": %g, \"initial_norm\": 1.0, \"runs\": [",
              static_cast<long long>(steps), lr);
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    std::printf("%s{\"optimizer\": \"%s\", \"final_norm\": %.6g, \"final_cos\": %.6g, \"steps_to_cos_0.99\": %lld}",
                i ? ", " : "", r.name.c_str(), r.final_norm, r.final_cos, static_cast<long long>(r.steps_to_099));
  }
  std::printf("]}\n");
  return 0;
}
