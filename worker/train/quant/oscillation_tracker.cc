#include "worker/train/quant/oscillation_tracker.h"

#include <algorithm>

#include <c10/util/Exception.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)

namespace pendulum::train::quant {

OscillationTracker::OscillationTracker(OscillationTrackerOptions options) : options_(options) {
  TORCH_CHECK(options_.momentum > 0 && options_.momentum <= 1, "oscillation.momentum: got ", options_.momentum,
              ", must be in (0, 1]");
}

OscillationStepStats OscillationTracker::Update(const at::Tensor& codes_in, bool count_oscillations) {
  at::NoGradGuard no_grad;
  // Codes of ≤ 8-bit signed quantizers fit int8; int16 arithmetic avoids
  // overflow of k − k_prev.
  at::Tensor k16 = codes_in.detach().to(at::kShort);
  OscillationStepStats st;
  st.numel = k16.numel();
  if (!k_prev_.defined()) {
    TORCH_CHECK(k16.min().item<int64_t>() >= -128 && k16.max().item<int64_t>() <= 127,
                "oscillation tracker: codes outside int8");
    k_prev_ = k16.to(at::kChar);
    dir_last_ = at::zeros_like(k_prev_);
    f_ = at::zeros(k16.sizes(), k16.options().dtype(options_.fp16_frequency ? at::kHalf : at::kFloat));
    count_ = at::zeros(k16.sizes(), k16.options().dtype(at::kInt));
    return st;
  }
  TORCH_CHECK(k16.sizes() == k_prev_.sizes(), "oscillation tracker: code shape changed");
  at::Tensor delta = k16 - k_prev_.to(at::kShort);
  at::Tensor sw = delta.ne(0);
  at::Tensor dir = delta.sign().to(at::kChar);
  st.flips = sw.sum().item<int64_t>();
  if (count_oscillations) {
    // A reversal: the code moves against its last direction of movement.
    at::Tensor osc = (dir.to(at::kShort) * dir_last_.to(at::kShort)).eq(-1);
    st.oscillations = osc.sum().item<int64_t>();
    const double m = options_.momentum;
    f_.copy_(f_.to(at::kFloat).mul_(1 - m).add_(osc.to(at::kFloat), m));
    count_.add_(osc.to(at::kInt));
  }
  dir_last_ = at::where(sw, dir, dir_last_);
  k_prev_ = k16.to(at::kChar);
  return st;
}

double OscillationTracker::OscillationRatio(double tau) const {
  if (!f_.defined() || f_.numel() == 0) return 0.0;
  return f_.to(at::kFloat).gt(tau).to(at::kDouble).mean().item<double>();
}

at::Tensor OscillationTracker::frequency() const { return f_.defined() ? f_.to(at::kFloat) : at::Tensor(); }

int64_t OscillationTracker::bytes_per_weight() const {
  return 1 + 1 + (options_.fp16_frequency ? 2 : 4) + 4;
}

pendulum::v1::WeightSnapshot OscillationTracker::Snapshot(int64_t step, const std::string& layer, int top_k,
                                                         int bins) const {
  pendulum::v1::WeightSnapshot snap;
  snap.set_step(step);
  snap.set_layer(layer);
  if (!f_.defined()) return snap;
  for (int64_t d : f_.sizes()) snap.add_shape(d);
  // Read on the host: the tracker's state lives on the training device, and
  // the raw pointers below would crash on CUDA memory (seen on an H200).
  at::Tensor f = f_.to(at::kFloat).reshape({-1}).contiguous().cpu();
  const double fmax = std::max(0.05, f.max().item<double>());
  snap.set_hist_max(fmax);
  at::Tensor hist = at::histc(f, bins, 0.0, fmax).to(at::kLong);
  const int64_t* h = hist.data_ptr<int64_t>();
  for (int i = 0; i < bins; ++i) snap.add_hist_counts(h[i]);
  const int64_t k = std::min<int64_t>(top_k, f.numel());
  if (k > 0) {
    at::Tensor cnt = count_.reshape({-1}).to(at::kLong).contiguous().cpu();
    // Sort by f desc, then count desc, then index asc: stable sorts, last key first.
    at::Tensor order = at::arange(f.numel(), at::kLong);
    at::Tensor by_count = std::get<1>(cnt.index_select(0, order).sort(/*stable=*/true, 0, /*descending=*/true));
    order = order.index_select(0, by_count);
    at::Tensor by_f = std::get<1>(f.index_select(0, order).sort(/*stable=*/true, 0, /*descending=*/true));
    order = order.index_select(0, by_f).slice(0, 0, k).contiguous();
    const int64_t* idx = order.data_ptr<int64_t>();
    const float* fp = f.data_ptr<float>();
    const int64_t* cp = cnt.data_ptr<int64_t>();
    for (int64_t i = 0; i < k; ++i) {
      auto* t = snap.add_top();
      const int64_t flat = idx[i];
      t->set_index(flat);
      t->set_frequency(fp[flat]);
      t->set_count(cp[flat]);
      std::vector<int64_t> coords(f_.dim());
      int64_t rem = flat;
      for (int64_t d = f_.dim() - 1; d >= 0; --d) {
        coords[d] = rem % f_.size(d);
        rem /= f_.size(d);
      }
      for (int64_t c : coords) t->add_coords(c);
    }
  }
  return snap;
}

std::vector<at::Tensor> OscillationTracker::State() const {
  if (!k_prev_.defined()) return {};
  return {k_prev_, dir_last_, f_, count_};
}

void OscillationTracker::LoadState(const std::vector<at::Tensor>& state) {
  if (state.empty()) {
    k_prev_ = dir_last_ = f_ = count_ = at::Tensor();
    return;
  }
  TORCH_CHECK(state.size() == 4, "oscillation tracker state needs 4 tensors, got ", state.size());
  k_prev_ = state[0].to(at::kChar).clone();
  dir_last_ = state[1].to(at::kChar).clone();
  f_ = state[2].to(options_.fp16_frequency ? at::kHalf : at::kFloat).clone();
  count_ = state[3].to(at::kInt).clone();
}

}  // namespace pendulum::train::quant
