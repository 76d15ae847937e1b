#include "worker/train/quant/cga.h"

#include <c10/util/Exception.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)

#include "worker/train/quant/ste_ops.h"

namespace pendulum::train::quant {
namespace {

at::Tensor LatentCode(const at::Tensor& w, int bits) {
  TORCH_CHECK(w.dim() == 2, "CGA expects a 2-D weight, got ", w.dim(), "-D");
  at::Tensor s = w.abs().mean(1, /*keepdim=*/true) * 2;
  at::Tensor c = (w / s).clamp(-1.0, kStatsQUpperClip);
  return c * static_cast<double>(int64_t{1} << (bits - 1)) - 0.5;
}

}  // namespace

at::Tensor CgaFreeMaskFromLatent(const at::Tensor& b, double br) {
  at::Tensor r = b.round();
  const int64_t lo = r.min().item<int64_t>();
  const int64_t hi = r.max().item<int64_t>();
  at::Tensor free = at::zeros(b.sizes(), b.options().dtype(at::kBool));
  for (int64_t i = lo; i < hi; ++i) {
    at::Tensor diff = b - static_cast<double>(i);
    free.logical_or_(diff.le(0.5 + br).logical_and_(diff.ge(0.5 - br)));
  }
  return free;
}

at::Tensor CgaFreezeMask(const at::Tensor& weight, int bits, double br) {
  at::NoGradGuard no_grad;
  at::Tensor free = CgaFreeMaskFromLatent(LatentCode(weight.detach(), bits), br);
  return free.logical_not().to(weight.scalar_type());
}

ConfidenceGuidedAnnealing::ConfidenceGuidedAnnealing(std::vector<CgaTarget> targets, double boundary_range)
    : targets_(std::move(targets)), boundary_range_(boundary_range) {
  TORCH_CHECK(boundary_range > 0 && boundary_range < 0.5, "cga.boundary_range: got ", boundary_range,
              ", must be in (0, 0.5)");
  for (const CgaTarget& t : targets_) {
    TORCH_CHECK(t.param.defined() && t.param.dim() == 2, "CGA target ", t.name, " must be a 2-D weight");
  }
}

void ConfidenceGuidedAnnealing::MaskGradients() {
  at::NoGradGuard no_grad;
  frozen_.clear();
  saved_.clear();
  free_fractions_.clear();
  free_count_ = 0;
  total_count_ = 0;
  for (const CgaTarget& t : targets_) {
    // Fresh s from the weights as they are now (trap 5).
    at::Tensor free = CgaFreeMaskFromLatent(LatentCode(t.param.detach(), t.bits), boundary_range_);
    at::Tensor frozen = free.logical_not();
    at::Tensor grad = t.param.mutable_grad();
    if (grad.defined()) grad.masked_fill_(frozen, 0.0);
    frozen_.push_back(frozen);
    saved_.push_back(t.param.detach().clone());
    const int64_t n_free = free.sum().item<int64_t>();
    free_count_ += n_free;
    total_count_ += free.numel();
    free_fractions_.push_back(static_cast<double>(n_free) / static_cast<double>(free.numel()));
  }
}

void ConfidenceGuidedAnnealing::RestoreFrozen() {
  at::NoGradGuard no_grad;
  TORCH_CHECK(frozen_.size() == targets_.size(), "CGA RestoreFrozen without MaskGradients");
  for (size_t i = 0; i < targets_.size(); ++i) {
    at::Tensor p = targets_[i].param.detach();
    p.copy_(at::where(frozen_[i], saved_[i], p));
  }
  frozen_.clear();
  saved_.clear();
}

double ConfidenceGuidedAnnealing::free_fraction() const {
  return total_count_ == 0 ? 0.0 : static_cast<double>(free_count_) / static_cast<double>(total_count_);
}

}  // namespace pendulum::train::quant
