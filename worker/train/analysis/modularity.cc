#include "worker/train/analysis/modularity.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include <torch/utils.h>

namespace pendulum::train::analysis {
namespace {

using Matrix = std::vector<std::vector<double>>;

Matrix ToMatrix(const at::Tensor& a) {
  at::Tensor c = a.to(at::kDouble).contiguous().cpu();  // host pointers below
  const int64_t n = c.size(0);
  Matrix m(n, std::vector<double>(n));
  const double* p = c.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) std::copy(p + i * n, p + (i + 1) * n, m[i].begin());
  return m;
}

// One Louvain level: local moves on graph `w` (self-loops allowed on the
// diagonal, counted once as in the aggregated graph). Returns the community of
// each node, renumbered 0..k−1; `moved` says whether anything changed.
std::vector<int64_t> LocalMoves(const Matrix& w, double two_m, double gamma, std::mt19937_64& rng,
                                bool* moved) {
  const size_t n = w.size();
  std::vector<double> k(n, 0.0);
  for (size_t i = 0; i < n; ++i) k[i] = std::accumulate(w[i].begin(), w[i].end(), 0.0);
  std::vector<int64_t> comm(n);
  std::iota(comm.begin(), comm.end(), 0);
  std::vector<double> tot(k);  // Σ degrees per community
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  *moved = false;
  bool improved = true;
  int sweeps = 0;
  while (improved && sweeps++ < 100) {
    improved = false;
    for (size_t i : order) {
      std::map<int64_t, double> links;  // community → weight from i (ordered: deterministic)
      for (size_t j = 0; j < n; ++j) {
        if (j != i && w[i][j] > 0) links[comm[j]] += w[i][j];
      }
      const int64_t old = comm[i];
      tot[old] -= k[i];
      double best_gain = links.count(old) ? links[old] - gamma * tot[old] * k[i] / two_m : 0.0 - gamma * tot[old] * k[i] / two_m;
      int64_t best = old;
      for (const auto& [c, wic] : links) {
        const double gain = wic - gamma * tot[c] * k[i] / two_m;
        if (gain > best_gain + 1e-12) {
          best_gain = gain;
          best = c;
        }
      }
      comm[i] = best;
      tot[best] += k[i];
      if (best != old) {
        improved = true;
        *moved = true;
      }
    }
  }
  std::map<int64_t, int64_t> renumber;
  for (auto& c : comm) {
    auto it = renumber.emplace(c, static_cast<int64_t>(renumber.size())).first;
    c = it->second;
  }
  return comm;
}

}  // namespace

InteractionGraph BuildInteractionGraph(const std::vector<at::Tensor>& edges, double edge_eps,
                                       double relative_eps) {
  InteractionGraph g;
  int64_t n = 0;
  for (size_t l = 0; l < edges.size(); ++l) {
    g.layer_offset.push_back(n);
    n += edges[l].size(1);
  }
  g.layer_offset.push_back(n);
  if (!edges.empty()) n += edges.back().size(0);
  g.adjacency = at::zeros({n, n}, at::kDouble);
  for (size_t l = 0; l < edges.size(); ++l) {
    double eps = edge_eps;
    if (relative_eps > 0 && edges[l].numel() > 0) {
      eps = std::max(relative_eps * edges[l].max().item<double>(), 1e-300);
    }
    at::Tensor w = at::clamp_min(at::log10(edges[l].to(at::kDouble) / eps), 0.0);
    w = at::nan_to_num(w, 0.0, 0.0, 0.0);
    const int64_t r0 = g.layer_offset[l], r1 = g.layer_offset[l + 1];
    g.adjacency.slice(0, r1, r1 + w.size(0)).slice(1, r0, r0 + w.size(1)).copy_(w);
    g.adjacency.slice(0, r0, r0 + w.size(1)).slice(1, r1, r1 + w.size(0)).copy_(w.t());
  }
  return g;
}

double Modularity(const at::Tensor& adjacency, const std::vector<int64_t>& community,
                  double resolution) {
  const Matrix w = ToMatrix(adjacency);
  const size_t n = w.size();
  std::vector<double> k(n, 0.0);
  double two_m = 0;
  for (size_t i = 0; i < n; ++i) {
    k[i] = std::accumulate(w[i].begin(), w[i].end(), 0.0);
    two_m += k[i];
  }
  if (two_m <= 0) return 0.0;
  double q = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (community[i] == community[j]) q += w[i][j] - resolution * k[i] * k[j] / two_m;
    }
  }
  return q / two_m;
}

Clustering FindModules(const at::Tensor& adjacency, const ModularityOptions& o) {
  torch::NoGradGuard no_grad;
  Matrix w = ToMatrix(adjacency);
  const size_t n = w.size();
  Clustering out;
  out.community.resize(n);
  std::iota(out.community.begin(), out.community.end(), 0);
  double two_m = 0;
  for (const auto& row : w) two_m += std::accumulate(row.begin(), row.end(), 0.0);
  if (n == 0 || two_m <= 0) {
    out.num_communities = static_cast<int64_t>(n);
    return out;
  }
  std::mt19937_64 rng(o.seed);
  std::vector<int64_t> node_comm = out.community;  // original node → current super-node
  for (int pass = 0; pass < o.max_passes; ++pass) {
    bool moved = false;
    std::vector<int64_t> comm = LocalMoves(w, two_m, o.resolution, rng, &moved);
    if (!moved) break;
    const int64_t k = *std::max_element(comm.begin(), comm.end()) + 1;
    Matrix agg(k, std::vector<double>(k, 0.0));
    for (size_t i = 0; i < w.size(); ++i) {
      for (size_t j = 0; j < w.size(); ++j) agg[comm[i]][comm[j]] += w[i][j];
    }
    for (auto& c : node_comm) c = comm[c];
    w = std::move(agg);
  }
  // Renumber by first node so the labels are stable.
  std::map<int64_t, int64_t> renumber;
  for (size_t i = 0; i < n; ++i) {
    auto it = renumber.emplace(node_comm[i], static_cast<int64_t>(renumber.size())).first;
    out.community[i] = it->second;
  }
  out.num_communities = static_cast<int64_t>(renumber.size());
  out.q = Modularity(adjacency, out.community, o.resolution);
  return out;
}

}  // namespace pendulum::train::analysis
