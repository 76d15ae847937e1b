#include "worker/train/analysis/basis_ablation.h"

#include <algorithm>

#include <torch/utils.h>

namespace pendulum::train::analysis {

NodeBasis NeuronBasisByMoment(const at::Tensor& gram) {
  at::Tensor order = at::argsort(gram.diagonal(), /*dim=*/0, /*descending=*/true);
  at::Tensor p = at::eye(gram.size(0), at::kDouble).index_select(1, order);
  return NodeBasis{p, p.t()};
}

AblationCurve AblateBasis(const LinearChain& chain, const at::Tensor& inputs,
                          const at::Tensor& labels, size_t l, const at::Tensor& mean,
                          const NodeBasis& basis, const std::vector<int64_t>& ks,
                          const std::string& name) {
  torch::NoGradGuard no_grad;
  AblationCurve curve;
  curve.basis = name;
  curve.node_layer = l;
  const std::vector<at::Tensor> acts = chain.NodeActivations(inputs);
  const at::Tensor y = acts.back();
  const at::Tensor f_ext = ExtendActivations(chain, l, acts[l], mean);
  const at::Tensor f_hat = at::matmul(f_ext, basis.c);
  const int64_t r = basis.c.size(1);
  for (int64_t k : ks) {
    k = std::clamp<int64_t>(k, 0, r);
    at::Tensor f_k = at::matmul(f_hat.slice(1, 0, k), basis.c_pinv.slice(0, 0, k));  // N × d_ext
    at::Tensor out;
    if (l == chain.num_layers()) {
      out = f_k;
    } else {
      at::Tensor pre = at::matmul(f_k, ExtendedWeight(chain, l, mean).t());
      if (chain.acts[l] == Activation::kRelu) pre = at::relu(pre);
      out = chain.ForwardFrom(l + 1, pre);
    }
    curve.kept.push_back(k);
    curve.output_mse.push_back((out - y).pow(2).mean().item<double>());
    if (labels.defined()) {
      curve.accuracy.push_back(
          (out.argmax(1) == labels.to(at::kLong)).to(at::kDouble).mean().item<double>());
    }
  }
  return curve;
}

}  // namespace pendulum::train::analysis
