#pragma once
// Module finding on the interaction graph (methods.md §6.2). Nodes are the
// basis directions of all node layers; the edge between direction j of layer l
// and direction i of layer l+1 weighs w = max(0, log10(E_ij/ε)). Communities
// maximise Newman modularity Q = (1/2m) Σ_ij [w_ij − γ k_i k_j/(2m)] 1[c_i = c_j]
// with a deterministic, seeded Louvain optimiser (local moves in a seeded random
// order, then aggregation, repeated) — our CHOICE instead of Leiden (no Leiden
// in C++ here). Louvain optimises the same objective but, unlike Leiden, does not
// guarantee connected communities. Pure computation.

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace pendulum::train::analysis {

struct ModularityOptions {
  double edge_eps = 1e-6;    // ε in log10(E/ε): weaker edges count as absent
  // If > 0, ε is taken per layer as edge_eps_relative · max_ij E^l_ij instead
  // (a CHOICE standing in for rib's ablation-based ε: it drops edges that are
  // finite-sample noise relative to the layer's strongest interaction).
  double edge_eps_relative = 0.0;
  double resolution = 1.0;   // γ
  uint64_t seed = 0;
  int max_passes = 10;       // Louvain levels (cf. Leiden's 10 iterations)
};

struct InteractionGraph {
  std::vector<int64_t> layer_offset;  // first node id of each node layer
  at::Tensor adjacency;               // n × n float64, symmetric, zero diagonal
};

// edges[l]: r_{l+1} × r_l for l = 0..L−1. relative_eps > 0: per-layer ε =
// relative_eps · max E^l (else the absolute edge_eps).
InteractionGraph BuildInteractionGraph(const std::vector<at::Tensor>& edges, double edge_eps,
                                       double relative_eps = 0.0);

struct Clustering {
  std::vector<int64_t> community;  // per node, 0..k−1 (numbered by first node)
  int64_t num_communities = 0;
  double q = 0;                    // modularity at resolution γ
};

Clustering FindModules(const at::Tensor& adjacency, const ModularityOptions& options);
double Modularity(const at::Tensor& adjacency, const std::vector<int64_t>& community,
                  double resolution);

}  // namespace pendulum::train::analysis
