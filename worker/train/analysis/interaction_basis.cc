#include "worker/train/analysis/interaction_basis.h"

#include <torch/utils.h>

#include "absl/strings/str_cat.h"

namespace pendulum::train::analysis {
namespace {

// Symmetric eigendecomposition in float64, eigenvalues descending.
std::pair<at::Tensor, at::Tensor> EighDescending(const at::Tensor& sym) {
  at::Tensor s = 0.5 * (sym + sym.t());
  auto [vals, vecs] = at::linalg_eigh(s);
  return {vals.flip({0}), vecs.flip({1})};
}

}  // namespace

at::Tensor ExtendActivations(const LinearChain& chain, size_t l, const at::Tensor& f,
                             const at::Tensor& mean) {
  if (l == chain.num_layers()) return f;
  at::Tensor ones = at::ones({f.size(0), 1}, f.options());
  return at::cat({f - mean, ones}, 1);
}

at::Tensor ExtendedWeight(const LinearChain& chain, size_t l, const at::Tensor& mean) {
  const at::Tensor& w = chain.weights[l];
  at::Tensor b = chain.biases[l] + at::mv(w, mean);
  return at::cat({w, b.unsqueeze(1)}, 1);
}

NodeBasis NeuronBasis(int64_t ext_width) {
  at::Tensor eye = at::eye(ext_width, at::kDouble);
  return NodeBasis{eye, eye};
}

NodeBasis PcaBasis(const at::Tensor& gram, double eps) {
  auto [vals, vecs] = EighDescending(gram);
  const int64_t r = (vals > eps).sum().item<int64_t>();
  at::Tensor u = vecs.slice(1, 0, r);
  return NodeBasis{u, u.t()};
}

at::Tensor EdgeStrengths(const LinearChain& chain, size_t l, const std::vector<at::Tensor>& acts,
                         const at::Tensor& mean_l, const at::Tensor& mean_next,
                         const NodeBasis& from, const NodeBasis& to, int64_t chunk) {
  torch::NoGradGuard no_grad;
  const at::Tensor w_ext = ExtendedWeight(chain, l, mean_l);          // d1 × d0e
  const int64_t d1 = chain.width(l + 1);
  const at::Tensor a = to.c.slice(0, 0, d1).t();                      // r1 × d1
  const at::Tensor b = at::matmul(w_ext, from.c_pinv.t());            // d1 × r0
  const at::Tensor f_ext = ExtendActivations(chain, l, acts[l], mean_l);
  const at::Tensor f_hat = at::matmul(f_ext, from.c);                 // N × r0
  const at::Tensor pre = at::addmm(chain.biases[l], acts[l], chain.weights[l].t());
  const at::Tensor g = chain.ActDerivative(l, pre);                   // N × d1
  const int64_t n = f_ext.size(0);
  at::Tensor e = at::zeros({a.size(0), b.size(1)}, at::kDouble);
  for (int64_t s = 0; s < n; s += chunk) {
    const int64_t t = std::min(n, s + chunk);
    at::Tensor gc = g.slice(0, s, t);                                  // n × d1
    // Ĵ_x = A diag(g_x) B  →  (n, r1, r0)
    at::Tensor j = at::matmul(a.unsqueeze(0) * gc.unsqueeze(1), b);
    e += (j * f_hat.slice(0, s, t).unsqueeze(1)).pow(2).sum(0);
  }
  (void)mean_next;  // the shift of the next layer is constant: no effect on Ĵ
  return e / static_cast<double>(n);
}

absl::StatusOr<InteractionBasisResult> ComputeInteractionBasis(
    const LinearChain& chain, const at::Tensor& inputs, const InteractionBasisOptions& o) {
  if (!(o.eps_d > 0) || !(o.eps_lambda > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("spec.method.interaction_basis.eps_d/eps_lambda: got ",
                                                   o.eps_d, "/", o.eps_lambda, ", must be > 0"));
  }
  if (chain.num_layers() == 0) return absl::InvalidArgumentError("interaction_basis: empty chain");
  if (inputs.dim() < 2 || inputs.size(0) < 1 ||
      inputs.numel() / inputs.size(0) != chain.width(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "interaction_basis: inputs have shape ", c10::str(inputs.sizes()), ", the model expects N × ",
        chain.width(0)));
  }
  torch::NoGradGuard no_grad;
  const size_t L = chain.num_layers();
  const std::vector<at::Tensor> acts = chain.NodeActivations(inputs);
  const double n = static_cast<double>(inputs.size(0));
  InteractionBasisResult result;
  result.layers.resize(L + 1);
  for (size_t l = 0; l <= L; ++l) {
    InteractionLayer& layer = result.layers[l];
    layer.width = chain.width(l);
    layer.mean = (o.centre && l < L) ? acts[l].mean(0) : at::zeros({layer.width}, at::kDouble);
    at::Tensor f_ext = ExtendActivations(chain, l, acts[l], layer.mean);
    layer.ext_width = f_ext.size(1);
    layer.gram = at::matmul(f_ext.t(), f_ext) / n;
  }
  // Output node layer: the neuron basis (rotate_final_node_layer: false).
  {
    InteractionLayer& out = result.layers[L];
    out.basis = NeuronBasis(out.ext_width);
    out.r = out.r_prime = out.ext_width;
    out.d_all = std::get<0>(EighDescending(out.gram));
  }
  for (size_t l = L; l-- > 0;) {
    InteractionLayer& layer = result.layers[l];
    const InteractionLayer& next = result.layers[l + 1];
    // M' = W'ᵀ ((gᵀg/N) ⊙ AᵀA) W'
    const at::Tensor w_ext = ExtendedWeight(chain, l, layer.mean);
    const at::Tensor pre = at::addmm(chain.biases[l], acts[l], chain.weights[l].t());
    const at::Tensor g = chain.ActDerivative(l, pre);
    const at::Tensor a = next.basis.c.slice(0, 0, next.width).t();  // r_{l+1} × d_{l+1}
    const at::Tensor k = at::matmul(a.t(), a) * (at::matmul(g.t(), g) / n);
    layer.grad_gram = at::matmul(w_ext.t(), at::matmul(k, w_ext));
    // Centre mode: the constant direction is kept as its own first direction and
    // the basis is computed on the centred neurons only (else the bias column
    // b + Wμ would couple otherwise independent modules through the constant).
    const int64_t sub = o.centre ? layer.width : layer.ext_width;
    const at::Tensor gram_sub = layer.gram.slice(0, 0, sub).slice(1, 0, sub);
    const at::Tensor mp_sub = layer.grad_gram.slice(0, 0, sub).slice(1, 0, sub);
    auto [d_all, u_all] = EighDescending(gram_sub);
    layer.d_all = d_all;
    layer.r = (d_all > o.eps_d).sum().item<int64_t>();
    layer.d = d_all.slice(0, 0, layer.r);
    layer.u = u_all.slice(1, 0, layer.r);
    const at::Tensor sqrt_d = layer.d.sqrt();
    const at::Tensor ud = layer.u * sqrt_d.unsqueeze(0);  // U D^{1/2}
    const at::Tensor m = at::matmul(ud.t(), at::matmul(mp_sub, ud));
    auto [lam_all, v_all] = EighDescending(m);
    layer.lambda_all = lam_all;
    layer.r_prime = (lam_all > o.eps_lambda).sum().item<int64_t>();
    layer.lambda = lam_all.slice(0, 0, layer.r_prime);
    layer.v = v_all.slice(1, 0, layer.r_prime);
    const at::Tensor sqrt_l = layer.lambda.sqrt();
    at::Tensor c = at::matmul(layer.u / sqrt_d.unsqueeze(0), layer.v) * sqrt_l.unsqueeze(0);
    at::Tensor c_pinv = at::matmul((layer.v / sqrt_l.unsqueeze(0)).t(), ud.t());
    if (o.centre) {
      // Pad to d_ext rows/columns and put the constant direction first.
      at::Tensor e = at::zeros({layer.ext_width, 1}, at::kDouble);
      e[layer.width][0] = 1.0;
      c = at::cat({e, at::cat({c, at::zeros({1, c.size(1)}, at::kDouble)}, 0)}, 1);
      c_pinv = at::cat({e.t(), at::cat({c_pinv, at::zeros({c_pinv.size(0), 1}, at::kDouble)}, 1)}, 0);
    }
    layer.basis.c = c;
    layer.basis.c_pinv = c_pinv;
    layer.edges = EdgeStrengths(chain, l, acts, layer.mean, next.mean, layer.basis, next.basis,
                                o.chunk);
  }
  return result;
}

}  // namespace pendulum::train::analysis
