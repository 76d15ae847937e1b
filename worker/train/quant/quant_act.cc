#include "worker/train/quant/quant_act.h"

#include <c10/util/Exception.h>

namespace pendulum::train::quant {

QuantActImpl::QuantActImpl(QuantActOptions options_) : options(std::move(options_)) { reset(); }

void QuantActImpl::reset() {
  TORCH_CHECK(options.bits() == 0 || (options.bits() >= 1 && options.bits() <= 16),
              "activation bits must be 0 (off) or 1..16, got ", options.bits());
  if (options.bits() == 0) return;
  quant = register_module("quant", LsqQuantizer(LsqQuantizerOptions(options.bits())
                                                    .all_positive(options.all_positive())
                                                    .granularity(options.granularity())));
  if (options.shifts()) {
    move_b4 = register_parameter("move_b4", at::zeros({options.channels()}));
    move_aft = register_parameter("move_aft", at::zeros({options.channels()}));
  }
}

at::Tensor QuantActImpl::forward(const at::Tensor& x) {
  if (options.bits() == 0) return x;
  at::Tensor y = move_b4.defined() ? x + move_b4 : x;
  y = quant->forward(y);
  return move_aft.defined() ? y + move_aft : y;
}

}  // namespace pendulum::train::quant
