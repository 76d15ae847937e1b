#pragma once
// The Interaction Basis (methods.md §6.1-6.2; reconstructed from ApolloResearch/rib,
// basis_formula = "jacobian", integration_method = gradient, edge_formula =
// squared). For node layers l = L−1 … 0 (backwards, trap 6.5.1), in float64:
//   f_ext = [f, 1] (folded bias) or [f − μ, 1] (centred; then the layer's bias
//   column becomes b + Wμ), G = mean f_ext f_extᵀ = U D Uᵀ (keep D > ε_D),
//   M' = mean J_xᵀJ_x with J_x = ∂(C^{l+1 ᵀ} f^{l+1}_ext)/∂f^l_ext,
//   M = D^{1/2}UᵀM'UD^{1/2} = VΛVᵀ (keep Λ > ε_Λ), C = UD^{−1/2}VΛ^{1/2},
//   C⁺ = Λ^{−1/2}VᵀD^{1/2}Uᵀ.  The output node layer keeps C^L = I.
// For a Linear+ReLU chain M' is exact and cheap: M' = W'ᵀ((gᵀg/N) ⊙ AᵀA)W'
// with g = act'(pre) and A = C^{l+1}ᵀ restricted to the neurons.
// Pure computation: no I/O, no shared state.

#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "worker/train/analysis/linear_chain.h"

namespace pendulum::train::analysis {

struct InteractionBasisOptions {
  double eps_d = 1e-5;       // keep Gram eigenvalues D > eps_d
  double eps_lambda = 1e-5;  // keep gradient-Gram eigenvalues Λ > eps_lambda
  // Centre activations instead of plain folded biases. The constant direction
  // is then basis direction 0 of every non-output layer (C[:, 0] = e_const) and
  // the interaction basis is computed on the centred neurons; lambda and
  // r_prime describe those directions only (r' + 1 columns in C).
  bool centre = false;
  int64_t chunk = 256;       // samples per batch in the edge computation
};

// A basis of one node layer in extended coordinates (d_ext = d + 1 for l < L,
// d for the output): f̂ = Cᵀ f_ext, and f_ext ≈ C⁺ᵀ f̂ on the kept subspace.
struct NodeBasis {
  at::Tensor c;       // d_ext × r
  at::Tensor c_pinv;  // r × d_ext (left inverse on the kept subspace: C⁺C = I)
};

struct InteractionLayer {
  int64_t width = 0;       // d (neurons)
  int64_t ext_width = 0;   // d_ext
  at::Tensor mean;         // μ (centre mode; zeros otherwise), d
  at::Tensor gram;         // G, d_ext × d_ext
  at::Tensor grad_gram;    // M', d_ext × d_ext (undefined for the output layer)
  at::Tensor d_all;        // all eigenvalues of G, descending
  at::Tensor lambda_all;   // all eigenvalues of M (after the D cut), descending
  at::Tensor u, d, v, lambda;  // kept parts
  NodeBasis basis;         // C, C⁺
  int64_t r = 0;           // dims kept after the D cut
  int64_t r_prime = 0;     // dims kept after the Λ cut
  at::Tensor edges;        // E^l: r'_{l+1} × r'_l (undefined for the output layer)
};

struct InteractionBasisResult {
  std::vector<InteractionLayer> layers;  // node layers 0..L
};

// `inputs`: N × d_0 samples (any float dtype). INVALID_ARGUMENT on shape errors
// or bad options.
absl::StatusOr<InteractionBasisResult> ComputeInteractionBasis(
    const LinearChain& chain, const at::Tensor& inputs, const InteractionBasisOptions& options);

// Extended activations of node layer l as the analysis sees them: [f − μ, 1]
// (centre) or [f, 1]; the output layer is f itself.
at::Tensor ExtendActivations(const LinearChain& chain, size_t l, const at::Tensor& f,
                             const at::Tensor& mean);
// The outgoing layer of node layer l in extended input coordinates: W' = [W, b'].
at::Tensor ExtendedWeight(const LinearChain& chain, size_t l, const at::Tensor& mean);

// Squared-formula edges between node layer l (basis `from`) and l+1 (basis
// `to`): E_ij = mean_x (Ĵ_x,ij f̂^l_j(x))², Ĵ_x = C_toᵀ ∂f^{l+1}_ext/∂f^l_ext C_from⁺ᵀ.
at::Tensor EdgeStrengths(const LinearChain& chain, size_t l, const std::vector<at::Tensor>& acts,
                         const at::Tensor& mean_l, const at::Tensor& mean_next,
                         const NodeBasis& from, const NodeBasis& to, int64_t chunk = 256);

// Reference bases for comparison: the neuron basis (identity on f_ext) and the
// PCA basis (eigenvectors of G, descending, C⁺ = Cᵀ, eigenvalues > eps kept).
NodeBasis NeuronBasis(int64_t ext_width);
NodeBasis PcaBasis(const at::Tensor& gram, double eps);

}  // namespace pendulum::train::analysis
