#pragma once
// The key under which torch::optim::Optimizer::state() stores a parameter's
// state. LibTorch 1.x keys by the TensorImpl address printed as a string;
// LibTorch 2.x keys by the TensorImpl pointer itself. This is the only place
// in Pendulum that knows which, so AdamP/SGDP (and anyone reading optimizer
// state) build against both. Header-only, stateless, any thread.

#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include <ATen/Tensor.h>
#include <torch/optim/optimizer.h>

namespace pendulum::train::optim {

using OptimizerStateMap = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;
using OptimizerStateKey = typename OptimizerStateMap::key_type;

namespace internal {
template <typename Key>
Key MakeStateKey(const at::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    // What c10::guts::to_string(p.unsafeGetTensorImpl()) prints in 1.x.
    std::ostringstream out;
    out << p.unsafeGetTensorImpl();
    return out.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}
}  // namespace internal

// The state-map key of parameter `p` for this LibTorch.
inline OptimizerStateKey ParamStateKey(const at::Tensor& p) {
  return internal::MakeStateKey<OptimizerStateKey>(p);
}

}  // namespace pendulum::train::optim
