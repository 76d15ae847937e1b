#pragma once
// Ablation curves (methods.md §6.2, §7.6c): keep only the first k directions of
// a basis at one node layer (f_ext ← C⁺[:k]ᵀ C[:, :k]ᵀ f_ext), run the rest of
// the network, and record accuracy (when labels are given) and the mean squared
// change of the outputs. Bases are ordered: interaction by Λ, PCA by D, neurons
// by their second moment (diag G). Pure computation.

#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "worker/train/analysis/interaction_basis.h"
#include "worker/train/analysis/linear_chain.h"

namespace pendulum::train::analysis {

struct AblationCurve {
  std::string basis;                // interaction | pca | neuron
  size_t node_layer = 0;
  std::vector<int64_t> kept;        // k values
  std::vector<double> accuracy;     // empty without labels
  std::vector<double> output_mse;   // mean over samples and outputs of (y_k − y)²
};

// `labels` may be undefined. k values above the basis size are clipped.
AblationCurve AblateBasis(const LinearChain& chain, const at::Tensor& inputs,
                          const at::Tensor& labels, size_t node_layer, const at::Tensor& mean,
                          const NodeBasis& basis, const std::vector<int64_t>& ks,
                          const std::string& name);

// The neuron basis ordered by diag(G), descending (a permutation).
NodeBasis NeuronBasisByMoment(const at::Tensor& gram);

}  // namespace pendulum::train::analysis
