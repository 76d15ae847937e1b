// Unit checks of methods.md §7.6: C⁺C = I, CᵀGC = diag(Λ), whitened gradient
// Gram = I; the invariance check (b); and the block-diagonal modular MLP (a),
// in float64, including the input-rotation check. Runs in a few seconds.
#include <cmath>
#include <iostream>
#include <map>
#include <set>

#include <torch/utils.h>

#include "gtest/gtest.h"
#include "worker/train/analysis/basis_ablation.h"
#include "worker/train/analysis/interaction_basis.h"
#include "worker/train/analysis/linear_chain.h"
#include "worker/train/analysis/modularity.h"

namespace pendulum::train::analysis {
namespace {

double MaxAbs(const at::Tensor& t) { return t.abs().max().item<double>(); }

LinearChain RandomChain(std::vector<int64_t> widths, bool bias) {
  LinearChain c;
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    c.weights.push_back(at::randn({widths[i + 1], widths[i]}, at::kDouble) / std::sqrt(widths[i]));
    c.biases.push_back(bias ? 0.3 * at::randn({widths[i + 1]}, at::kDouble)
                            : at::zeros({widths[i + 1]}, at::kDouble));
    c.acts.push_back(Activation::kRelu);
  }
  c.acts.back() = Activation::kIdentity;
  return c;
}

TEST(InteractionBasisTest, AlgebraicIdentitiesHold) {
  torch::manual_seed(11);
  LinearChain chain = RandomChain({5, 8, 8, 3}, /*bias=*/true);
  at::Tensor x = at::randn({2000, 5}, at::kDouble);
  InteractionBasisOptions o;
  o.eps_d = o.eps_lambda = 1e-10;
  auto res = ComputeInteractionBasis(chain, x, o);
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_EQ(res->layers.size(), 4u);
  for (size_t l = 0; l < 3; ++l) {
    const InteractionLayer& layer = res->layers[l];
    SCOPED_TRACE("node layer " + std::to_string(l));
    ASSERT_GT(layer.r_prime, 0);
    const at::Tensor& c = layer.basis.c;
    const at::Tensor& cp = layer.basis.c_pinv;
    at::Tensor eye = at::eye(layer.r_prime, at::kDouble);
    EXPECT_LT(MaxAbs(at::matmul(cp, c) - eye), 1e-8);
    const double scale = std::max(1.0, layer.lambda.max().item<double>());
    EXPECT_LT(MaxAbs(at::matmul(c.t(), at::matmul(layer.gram, c)) - at::diag(layer.lambda)), 1e-8 * scale);
    EXPECT_LT(MaxAbs(at::matmul(cp, at::matmul(layer.grad_gram, cp.t())) - eye), 1e-8);
    // Descending and above the cut.
    EXPECT_GE(layer.lambda.min().item<double>(), o.eps_lambda);
    if (layer.r_prime > 1) {
      EXPECT_GE((layer.lambda.slice(0, 0, -1) - layer.lambda.slice(0, 1)).min().item<double>(), 0.0);
    }
    // Edges have the right shape and are non-negative.
    EXPECT_EQ(layer.edges.size(1), layer.r_prime);
    EXPECT_EQ(layer.edges.size(0), res->layers[l + 1].basis.c.size(1));
    EXPECT_GE(layer.edges.min().item<double>(), 0.0);
  }
  // The IB activations' Gram is Λ directly from data (not only via G).
  std::vector<at::Tensor> acts = chain.NodeActivations(x);
  at::Tensor fh = at::matmul(ExtendActivations(chain, 1, acts[1], res->layers[1].mean), res->layers[1].basis.c);
  EXPECT_LT(MaxAbs(at::matmul(fh.t(), fh) / 2000.0 - at::diag(res->layers[1].lambda)), 1e-8);
  // Rejects bad input.
  EXPECT_FALSE(ComputeInteractionBasis(chain, at::randn({10, 4}, at::kDouble), o).ok());
}

TEST(InteractionBasisTest, InvariantToDuplicatedReluUnit) {
  torch::manual_seed(12);
  LinearChain chain = RandomChain({4, 6, 6, 2}, /*bias=*/true);
  // Duplicate unit 2 of node layer 1 and halve its outgoing weights.
  LinearChain dup = chain;
  const int64_t j = 2;
  dup.weights[0] = at::cat({chain.weights[0], chain.weights[0].slice(0, j, j + 1)}, 0);
  dup.biases[0] = at::cat({chain.biases[0], chain.biases[0].slice(0, j, j + 1)}, 0);
  at::Tensor w1 = chain.weights[1].clone();
  w1.select(1, j).mul_(0.5);
  dup.weights[1] = at::cat({w1, w1.slice(1, j, j + 1)}, 1);
  at::Tensor x = at::randn({3000, 4}, at::kDouble);
  ASSERT_LT(MaxAbs(chain.ForwardFrom(0, x) - dup.ForwardFrom(0, x)), 1e-12);  // same function
  InteractionBasisOptions o;
  o.eps_d = o.eps_lambda = 1e-9;
  auto a = ComputeInteractionBasis(chain, x, o);
  auto b = ComputeInteractionBasis(dup, x, o);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t l = 0; l < 3; ++l) {
    SCOPED_TRACE("node layer " + std::to_string(l));
    EXPECT_EQ(a->layers[l].r_prime, b->layers[l].r_prime);
    ASSERT_EQ(a->layers[l].lambda.numel(), b->layers[l].lambda.numel());
    const double scale = std::max(1.0, a->layers[l].lambda.max().item<double>());
    EXPECT_LT(MaxAbs(a->layers[l].lambda - b->layers[l].lambda), 1e-8 * scale);
  }
  EXPECT_EQ(b->layers[1].r, a->layers[1].r);  // the D cut removed the new zero direction
  // PCA on the neurons changes: the duplicated unit doubles its share of variance.
  at::Tensor pa = a->layers[1].d_all.slice(0, 0, 3), pb = b->layers[1].d_all.slice(0, 0, 3);
  EXPECT_GT(MaxAbs(pa - pb), 1e-3);
}

// methods.md §6.3: width 8, 4 hidden ReLU layers, weights blockdiag(2·N(0,1)_{4×4}, 2·N(0,1)_{4×4}), bias 0.
LinearChain BlockDiagonalChain() {
  LinearChain c;
  for (int i = 0; i < 5; ++i) {
    at::Tensor w = at::zeros({8, 8}, at::kDouble);
    w.slice(0, 0, 4).slice(1, 0, 4).copy_(2.0 * at::randn({4, 4}, at::kDouble));
    w.slice(0, 4, 8).slice(1, 4, 8).copy_(2.0 * at::randn({4, 4}, at::kDouble));
    c.weights.push_back(w);
    c.biases.push_back(at::zeros({8}, at::kDouble));
    c.acts.push_back(Activation::kRelu);
  }
  c.acts.back() = Activation::kIdentity;
  return c;
}

// Block of each basis direction (0/1 by mass on neurons 0-3 vs 4-7), or -1 for
// the constant direction; also returns the worst purity.
std::vector<int> DirectionBlocks(const at::Tensor& c, int64_t width, double* min_purity) {
  std::vector<int> block;
  for (int64_t k = 0; k < c.size(1); ++k) {
    at::Tensor col = c.select(1, k).slice(0, 0, width).pow(2);
    const double total = col.sum().item<double>();
    if (total < 1e-20) {
      block.push_back(-1);
      continue;
    }
    const double a = col.slice(0, 0, width / 2).sum().item<double>() / total;
    block.push_back(a > 0.5 ? 0 : 1);
    *min_purity = std::min(*min_purity, std::max(a, 1 - a));
  }
  return block;
}

// Mean over input-layer directions j of the share of j's edge mass going to
// the dominant block of layer-1 directions.
double EdgePurity(const at::Tensor& edges, const std::vector<int>& next_blocks,
                  const std::vector<int>& from_blocks = {}) {
  double sum = 0;
  int64_t count = 0;
  for (int64_t j = 0; j < edges.size(1); ++j) {
    if (!from_blocks.empty() && from_blocks[j] < 0) continue;  // the constant direction
    double mass[2] = {0, 0};
    for (int64_t i = 0; i < edges.size(0); ++i) {
      if (next_blocks[i] >= 0) mass[next_blocks[i]] += edges[i][j].item<double>();
    }
    if (mass[0] + mass[1] <= 0) continue;
    sum += std::max(mass[0], mass[1]) / (mass[0] + mass[1]);
    ++count;
  }
  return sum / static_cast<double>(count);
}

TEST(InteractionBasisTest, BlockDiagonalMlpRecoversModulesAndSurvivesInputRotation) {
  torch::manual_seed(13);
  LinearChain chain = BlockDiagonalChain();
  at::Tensor x = at::randn({10000, 8}, at::kDouble);
  InteractionBasisOptions o;
  o.centre = true;
  o.eps_d = o.eps_lambda = 1e-12;
  auto res = ComputeInteractionBasis(chain, x, o);
  ASSERT_TRUE(res.ok()) << res.status();
  const size_t L = chain.num_layers();
  std::vector<std::vector<int>> blocks(L + 1);
  double min_purity = 1.0;
  for (size_t l = 0; l <= L; ++l) blocks[l] = DirectionBlocks(res->layers[l].basis.c, 8, &min_purity);
  // Every interaction direction lives in one block, up to the finite-sample
  // cross-block correlations of 10k samples (~1%).
  EXPECT_GT(min_purity, 0.95);
  // Edges between directions of different blocks carry almost no mass.
  std::vector<at::Tensor> edges;
  for (size_t l = 0; l < L; ++l) {
    edges.push_back(res->layers[l].edges);
    double cross = 0, total = 0;
    for (int64_t i = 0; i < edges[l].size(0); ++i) {
      for (int64_t j = 0; j < edges[l].size(1); ++j) {
        if (blocks[l + 1][i] < 0 || blocks[l][j] < 0) continue;
        const double e = edges[l][i][j].item<double>();
        total += e;
        if (blocks[l + 1][i] != blocks[l][j]) cross += e;
      }
    }
    EXPECT_LT(cross / total, 5e-3) << "node layer " << l;
  }
  // Module finding: no community mixes the two blocks, Q clearly > 0.
  InteractionGraph graph = BuildInteractionGraph(edges, 1e-6, /*relative_eps=*/1e-2);
  // The constant (bias) directions of the centred basis feed every module;
  // leave them out of the module graph, as they are not features.
  for (size_t l = 0; l < L; ++l) {
    const int64_t c = graph.layer_offset[l];
    graph.adjacency.select(0, c).zero_();
    graph.adjacency.select(1, c).zero_();
  }
  ModularityOptions mo;
  mo.seed = 1;
  Clustering cl = FindModules(graph.adjacency, mo);
  EXPECT_GT(cl.q, 0.3);
  std::map<int64_t, std::set<int>> blocks_of_comm;
  for (size_t l = 0; l <= L; ++l) {
    for (size_t k = 0; k < blocks[l].size(); ++k) {
      if (blocks[l][k] >= 0) blocks_of_comm[cl.community[graph.layer_offset[l] + k]].insert(blocks[l][k]);
    }
  }
  std::set<int> seen;
  for (const auto& [comm, bs] : blocks_of_comm) {
    EXPECT_EQ(bs.size(), 1u) << "community " << comm << " mixes the two modules";
    seen.insert(bs.begin(), bs.end());
  }
  EXPECT_EQ(seen.size(), 2u);
  // Deterministic in the seed.
  EXPECT_EQ(FindModules(graph.adjacency, mo).community, cl.community);
  // At a lower resolution the communities still never mix the modules.
  mo.resolution = 0.5;
  Clustering coarse = FindModules(graph.adjacency, mo);
  std::map<int64_t, std::set<int>> coarse_blocks;
  for (size_t l = 0; l <= L; ++l) {
    for (size_t k = 0; k < blocks[l].size(); ++k) {
      if (blocks[l][k] >= 0) coarse_blocks[coarse.community[graph.layer_offset[l] + k]].insert(blocks[l][k]);
    }
  }
  for (const auto& [comm, bs] : coarse_blocks) EXPECT_EQ(bs.size(), 1u);

  // Neuron basis of the unrotated model shows the blocks at the input layer.
  std::vector<at::Tensor> acts = chain.NodeActivations(x);
  NodeBasis n0 = NeuronBasis(9), n1 = NeuronBasis(9);
  std::vector<int> neuron_blocks = {0, 0, 0, 0, 1, 1, 1, 1, -1};
  at::Tensor e_neuron = EdgeStrengths(chain, 0, acts, res->layers[0].mean, res->layers[1].mean, n0, n1);
  EXPECT_GT(EdgePurity(e_neuron, neuron_blocks, neuron_blocks), 0.999);
  const double ib_purity = EdgePurity(res->layers[0].edges, blocks[1], blocks[0]);
  EXPECT_GT(ib_purity, 0.99);

  // Rotate the input: x ← R x, W0 ← W0 Rᵀ (same function).
  at::Tensor r = std::get<0>(at::linalg_qr(at::randn({8, 8}, at::kDouble)));
  LinearChain rot = chain;
  rot.weights[0] = at::matmul(chain.weights[0], r.t());
  at::Tensor xr = at::matmul(x, r.t());
  ASSERT_LT(MaxAbs(rot.ForwardFrom(0, xr) - chain.ForwardFrom(0, x)), 1e-9);
  auto rres = ComputeInteractionBasis(rot, xr, o);
  ASSERT_TRUE(rres.ok());
  std::vector<int> rblocks1;
  double rp = 1.0;
  rblocks1 = DirectionBlocks(rres->layers[1].basis.c, 8, &rp);
  // Input-layer IB directions of the rotated model: column 0 is the constant.
  std::vector<int> rblocks0(rres->layers[0].basis.c.size(1), 0);
  rblocks0[0] = -1;
  const double rot_ib_purity = EdgePurity(rres->layers[0].edges, rblocks1, rblocks0);
  std::vector<at::Tensor> racts = rot.NodeActivations(xr);
  at::Tensor rot_neuron = EdgeStrengths(rot, 0, racts, rres->layers[0].mean, rres->layers[1].mean, n0, n1);
  NodeBasis pca0 = PcaBasis(rres->layers[0].gram, 1e-12);
  at::Tensor rot_pca = EdgeStrengths(rot, 0, racts, rres->layers[0].mean, rres->layers[1].mean, pca0, n1);
  const double rot_neuron_purity = EdgePurity(rot_neuron, neuron_blocks, neuron_blocks);
  const double rot_pca_purity = EdgePurity(rot_pca, neuron_blocks);
  std::cout << "edge purity at the input layer: IB " << ib_purity << ", rotated IB " << rot_ib_purity
            << ", rotated neuron " << rot_neuron_purity << ", rotated PCA " << rot_pca_purity
            << ", Q " << cl.q << " (" << cl.num_communities << " communities; " << coarse.num_communities
            << " at resolution 0.5)\n";
  EXPECT_GT(rot_ib_purity, 0.99);
  EXPECT_LT(rot_neuron_purity, 0.9);
  EXPECT_LT(rot_pca_purity, 0.9);
  // The rotated model's interaction graph still splits into the two modules.
  std::vector<at::Tensor> redges;
  for (size_t l = 0; l < L; ++l) redges.push_back(rres->layers[l].edges);
  InteractionGraph rgraph = BuildInteractionGraph(redges, 1e-6, /*relative_eps=*/1e-2);
  for (size_t l = 0; l < L; ++l) {
    rgraph.adjacency.select(0, rgraph.layer_offset[l]).zero_();
    rgraph.adjacency.select(1, rgraph.layer_offset[l]).zero_();
  }
  EXPECT_NEAR(FindModules(rgraph.adjacency, mo).q, coarse.q, 0.05);
}

TEST(ModularityTest, TwoCliquesJoinedByOneEdge) {
  at::Tensor a = at::zeros({8, 8}, at::kDouble);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      if (i != j) {
        a[i][j] = 1.0;
        a[i + 4][j + 4] = 1.0;
      }
    }
  }
  a[3][4] = a[4][3] = 1.0;
  Clustering c = FindModules(a, ModularityOptions{});
  EXPECT_EQ(c.num_communities, 2);
  EXPECT_EQ(c.community, (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  // Q = Σ_c [L_c/m − (d_c/2m)²] with m = 13, L_c = 6, d_c = 13.
  EXPECT_NEAR(c.q, 2 * (6.0 / 13 - 0.25), 1e-12);
}

TEST(BasisAblationTest, CurvesEndAtTheFullModel) {
  torch::manual_seed(14);
  LinearChain chain = RandomChain({6, 10, 4}, true);
  at::Tensor x = at::randn({500, 6}, at::kDouble);
  at::Tensor y = chain.ForwardFrom(0, x).argmax(1);
  InteractionBasisOptions o;
  o.eps_d = o.eps_lambda = 1e-10;
  auto res = ComputeInteractionBasis(chain, x, o);
  ASSERT_TRUE(res.ok());
  const InteractionLayer& h = res->layers[1];
  AblationCurve ib = AblateBasis(chain, x, y, 1, h.mean, h.basis, {0, 2, 4, 11}, "interaction");
  AblationCurve pca = AblateBasis(chain, x, y, 1, h.mean, PcaBasis(h.gram, 1e-10), {0, 2, 4, 11}, "pca");
  AblationCurve neu = AblateBasis(chain, x, y, 1, h.mean, NeuronBasisByMoment(h.gram), {0, 2, 4, 11}, "neuron");
  for (const AblationCurve* c : {&ib, &pca, &neu}) {
    EXPECT_NEAR(c->accuracy.back(), 1.0, 1e-12) << c->basis;
    EXPECT_LT(c->output_mse.back(), 1e-12) << c->basis;
    EXPECT_GT(c->output_mse.front(), c->output_mse.back()) << c->basis;
  }
}

}  // namespace
}  // namespace pendulum::train::analysis
