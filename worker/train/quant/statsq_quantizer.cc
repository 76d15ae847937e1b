#include "worker/train/quant/statsq_quantizer.h"

#include <c10/util/Exception.h>

#include "worker/train/quant/ste_ops.h"

namespace pendulum::train::quant {

StatsQResult StatsQuantize(const at::Tensor& weight, int bits, const at::Tensor& free_mask) {
  TORCH_CHECK(bits >= 1 && bits <= 16, "StatsQ bits must be in 1..16, got ", bits);
  TORCH_CHECK(weight.dim() == 2 || weight.dim() == 3, "StatsQ expects a 2-D or 3-D weight, got ", weight.dim(),
              "-D");
  at::Tensor w = weight;
  at::Tensor s;
  if (w.dim() == 2) {
    s = w.abs().mean(1, /*keepdim=*/true) * 2;
  } else {
    s = w.abs().mean(-1, /*keepdim=*/true).mean(0, /*keepdim=*/true) * 2;
  }
  s = s.detach();
  const double n = static_cast<double>(int64_t{1} << (bits - 1));
  at::Tensor c = (w.detach() / s).clamp(-1.0, kStatsQUpperClip);
  at::Tensor z = c * n - 0.5;
  at::Tensor k = z.round();
  at::Tensor q = s * ((k + 0.5) / n);
  StatsQResult r;
  if (free_mask.defined()) {
    // Only the gradient path is masked: value stays q.
    r.output = q - (w * free_mask).detach() + w * free_mask;
  } else {
    r.output = q - w.detach() + w;
  }
  r.scale = s.squeeze();
  r.latent = z;
  r.codes = k;
  return r;
}

StatsQuantizerImpl::StatsQuantizerImpl(StatsQuantizerOptions options_) : options(options_) { reset(); }

void StatsQuantizerImpl::reset() {
  TORCH_CHECK(options.bits() >= 1 && options.bits() <= 16, "StatsQ bits must be in 1..16, got ", options.bits());
}

at::Tensor StatsQuantizerImpl::forward(const at::Tensor& weight) { return ForwardMasked(weight, at::Tensor()); }

at::Tensor StatsQuantizerImpl::ForwardMasked(const at::Tensor& weight, const at::Tensor& free_mask) {
  StatsQResult r = StatsQuantize(weight, options.bits(), free_mask);
  if (is_training()) {
    last_scale_ = r.scale;
    last_latent_ = r.latent;
    last_codes_ = r.codes;
  }
  return r.output;
}

}  // namespace pendulum::train::quant
