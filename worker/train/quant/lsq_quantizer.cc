#include "worker/train/quant/lsq_quantizer.h"

#include <cmath>
#include <string>

#include <c10/util/Exception.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)

#include "worker/train/quant/ste_ops.h"

namespace pendulum::train::quant {
namespace {

// Reshapes s so that it broadcasts against x.
at::Tensor BroadcastScale(const at::Tensor& s, const at::Tensor& x, LsqGranularity g) {
  switch (g) {
    case LsqGranularity::kPerTensor:
      return s;
    case LsqGranularity::kPerOutput: {
      std::vector<int64_t> shape(x.dim(), 1);
      shape[0] = s.size(0);
      return s.reshape(shape);
    }
    case LsqGranularity::kPerToken:
      return s.unsqueeze(-1);
    case LsqGranularity::kPerLastDim:
      return s;
  }
  return s;
}

void CheckShape(const at::Tensor& x, LsqGranularity g) {
  switch (g) {
    case LsqGranularity::kPerTensor:
      return;
    case LsqGranularity::kPerOutput:
      TORCH_CHECK(x.dim() == 2 || x.dim() == 4, "LSQ per-output quantizer expects a 2-D or 4-D weight, got ",
                  x.dim(), "-D");
      return;
    case LsqGranularity::kPerToken:
      TORCH_CHECK(x.dim() >= 2 && x.dim() <= 4, "LSQ per-token quantizer expects a 2-D..4-D input, got ",
                  x.dim(), "-D");
      return;
    case LsqGranularity::kPerLastDim:
      TORCH_CHECK(x.dim() == 3 || x.dim() == 4, "LSQ per-channel (v) quantizer expects 3-D or 4-D, got ",
                  x.dim(), "-D");
      return;
  }
}

}  // namespace

at::Tensor LsqInitScale(const at::Tensor& x, const LsqQuantizerOptions& options) {
  CheckShape(x, options.granularity());
  const IntRange r = LsqIntRange(options.bits(), options.all_positive());
  at::Tensor a = x.detach().abs();
  at::Tensor m;
  switch (options.granularity()) {
    case LsqGranularity::kPerTensor:
      m = a.mean().reshape({1});
      break;
    case LsqGranularity::kPerOutput:
      m = a;
      while (m.dim() > 1) m = m.mean(-1);
      break;
    case LsqGranularity::kPerToken:
      m = a.mean(-1);
      while (m.dim() > 1) m = m.mean(0);
      break;
    case LsqGranularity::kPerLastDim:
      m = a;
      while (m.dim() > 1) m = m.mean(0);
      break;
  }
  // lsq.py: 2 * mean / thd_pos ** 0.5 (per-tensor: mean * 2 / ..., same value).
  const double factor = options.all_positive() ? 4.0 : 2.0;
  return (m * factor) / std::sqrt(static_cast<double>(r.pos));
}

double LsqGradScaleFactor(const at::Tensor& x, const LsqQuantizerOptions& options) {
  const IntRange r = LsqIntRange(options.bits(), options.all_positive());
  double n = static_cast<double>(x.numel());
  switch (options.granularity()) {
    case LsqGranularity::kPerTensor:
      break;
    case LsqGranularity::kPerOutput:
      n /= static_cast<double>(x.size(0));
      break;
    case LsqGranularity::kPerToken:
      n /= static_cast<double>(x.size(-2));
      break;
    case LsqGranularity::kPerLastDim:
      n /= static_cast<double>(x.size(-1));
      break;
  }
  return 1.0 / std::sqrt(static_cast<double>(r.pos) * n);
}

LsqResult LsqFakeQuant(const at::Tensor& x, const at::Tensor& s, const LsqQuantizerOptions& options,
                       const std::function<at::Tensor(const at::Tensor&)>& int_hook) {
  CheckShape(x, options.granularity());
  const IntRange r = LsqIntRange(options.bits(), options.all_positive());
  at::Tensor alpha = BroadcastScale(s, x, options.granularity());
  at::Tensor s_scale = GradScale(ClipFloorSte(alpha), LsqGradScaleFactor(x, options));
  at::Tensor v = x / s_scale;
  at::Tensor k;
  at::Tensor latent;
  if (options.bits() == 1 && !options.all_positive()) {
    k = v.sign();
    latent = v.detach();
  } else {
    at::Tensor c = v.clamp(static_cast<double>(r.neg), static_cast<double>(r.pos));
    latent = c.detach();
    k = RoundPass(c);
  }
  if (int_hook) k = int_hook(k);
  LsqResult result;
  result.output = k * s_scale;
  result.codes = k.detach();
  result.latent = latent;
  return result;
}

LsqQuantizerImpl::LsqQuantizerImpl(LsqQuantizerOptions options_) : options(std::move(options_)) {
  reset();
}

void LsqQuantizerImpl::reset() {
  TORCH_CHECK(options.bits() >= 1 && options.bits() <= 16, "LSQ bits must be in 1..16, got ", options.bits());
  if (s_.defined()) s_ = register_parameter("s", s_.detach().clone(), options.learnable());
}

void LsqQuantizerImpl::InitFrom(const at::Tensor& x) {
  SetScale(LsqInitScale(x, options));
}

void LsqQuantizerImpl::SetScale(const at::Tensor& s) {
  if (!s_.defined()) {
    s_ = register_parameter("s", s.detach().clone(), options.learnable());
  } else {
    at::NoGradGuard no_grad;
    s_.copy_(s);
  }
}

at::Tensor LsqQuantizerImpl::forward(const at::Tensor& x) {
  if (!s_.defined()) InitFrom(x);
  LsqResult r = LsqFakeQuant(x, s_, options);
  if (keep_codes_ && is_training()) {
    last_codes_ = r.codes;
    last_latent_ = r.latent;
  }
  return r.output;
}

}  // namespace pendulum::train::quant
