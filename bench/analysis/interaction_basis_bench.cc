// Times the Interaction Basis (basis + edges) and the module finding on random
// ReLU MLPs of growing width (methods.md §6.4: runtime of the Jacobian pass).
// Prints one JSON object per line: {"widths":[...],"samples":N,"basis_s":..,"modules_s":..}.
#include <chrono>
#include <cstdio>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "worker/train/analysis/interaction_basis.h"
#include "worker/train/analysis/modularity.h"

using pendulum::train::analysis::Activation;
using pendulum::train::analysis::LinearChain;

int main() {
  at::set_num_threads(2);
  at::manual_seed(0);
  const std::vector<std::vector<int64_t>> shapes = {{64, 32, 32, 10}, {784, 100, 100, 10}};
  for (const auto& widths : shapes) {
    LinearChain chain;
    for (size_t i = 0; i + 1 < widths.size(); ++i) {
      chain.weights.push_back(at::randn({widths[i + 1], widths[i]}, at::kDouble) / std::sqrt(double(widths[i])));
      chain.biases.push_back(0.1 * at::randn({widths[i + 1]}, at::kDouble));
      chain.acts.push_back(Activation::kRelu);
    }
    chain.acts.back() = Activation::kIdentity;
    const int64_t n = 2000;
    at::Tensor x = at::randn({n, widths[0]}, at::kDouble);
    pendulum::train::analysis::InteractionBasisOptions o;
    o.eps_d = o.eps_lambda = 1e-12;
    auto t0 = std::chrono::steady_clock::now();
    auto res = pendulum::train::analysis::ComputeInteractionBasis(chain, x, o);
    auto t1 = std::chrono::steady_clock::now();
    if (!res.ok()) {
      std::fprintf(stderr, "%s\n", std::string(res.status().message()).c_str());
      return 1;
    }
    std::vector<at::Tensor> edges;
    for (size_t l = 0; l + 1 < res->layers.size(); ++l) edges.push_back(res->layers[l].edges);
    auto graph = pendulum::train::analysis::BuildInteractionGraph(edges, 1e-6);
    auto clusters = pendulum::train::analysis::FindModules(graph.adjacency, {});
    auto t2 = std::chrono::steady_clock::now();
    std::printf("{\"widths\":[");
    for (size_t i = 0; i < widths.size(); ++i) std::printf("%s%ld", i ? "," : "", long(widths[i]));
    std::printf("],\"samples\":%ld,\"basis_s\":%.4f,\"modules_s\":%.4f,\"q\":%.4f,\"communities\":%ld}\n",
                long(n), std::chrono::duration<double>(t1 - t0).count(),
                std::chrono::duration<double>(t2 - t1).count(), clusters.q, long(clusters.num_communities));
  }
  return 0;
}
