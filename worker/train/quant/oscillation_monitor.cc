#include "worker/train/quant/oscillation_monitor.h"

#include <cmath>
#include <limits>
#include <sstream>

#include <c10/util/Exception.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)

namespace pendulum::train::quant {
namespace {

std::string Key(const char* prefix, double v) {
  std::ostringstream s;
  s << prefix << v;
  return s.str();
}

}  // namespace

at::Tensor ThresholdDistance(const QuantWeightView& view) {
  at::Tensor z = view.latent.to(at::kFloat);
  at::Tensor k = z.round();
  const float inf = std::numeric_limits<float>::infinity();
  // Thresholds adjacent to code k are k − ½ (if k−1 is a code) and k + ½ (if k+1 is).
  at::Tensor lo = at::where(k.gt(static_cast<double>(view.code_min)), z - (k - 0.5), at::full({}, inf));
  at::Tensor hi = at::where(k.lt(static_cast<double>(view.code_max)), (k + 0.5) - z, at::full({}, inf));
  return at::minimum(lo.abs(), hi.abs());
}

OscillationMonitor::OscillationMonitor(OscillationMonitorOptions options) : options_(std::move(options)) {}

void OscillationMonitor::Attach(const std::shared_ptr<torch::nn::Module>& model) {
  layers_.clear();
  names_.clear();
  OscillationTrackerOptions to;
  to.momentum = options_.momentum;
  to.fp16_frequency = options_.fp16_frequency;
  for (const auto& item : model->named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    auto* source = dynamic_cast<QuantWeightSource*>(item.value().get());
    if (source == nullptr) continue;
    Layer layer{item.key(), item.value(), source, OscillationTracker(to), {}};
    names_.push_back(layer.name);
    layers_.push_back(std::move(layer));
  }
}

void OscillationMonitor::Step(int64_t step) {
  const bool count = step >= options_.start_step;
  for (Layer& l : layers_) {
    if (!l.source->has_quant_view()) continue;
    l.last = l.tracker.Update(l.source->quant_view().codes, count);
  }
}

pendulum::v1::OscillationStats OscillationMonitor::Stats(int64_t step, const ConfidenceGuidedAnnealing* cga) const {
  at::NoGradGuard no_grad;
  pendulum::v1::OscillationStats out;
  out.set_step(step);
  int64_t total = 0, flips = 0, oscs = 0;
  std::vector<double> above(options_.thresholds.size(), 0.0);
  for (const Layer& l : layers_) {
    if (!l.source->has_quant_view() || !l.tracker.initialized()) continue;
    const QuantWeightView v = l.source->quant_view();
    auto* p = out.add_layers();
    p->set_step(step);
    p->set_layer(l.name);
    auto& m = *p->mutable_values();
    const double n = static_cast<double>(l.last.numel);
    for (size_t i = 0; i < options_.thresholds.size(); ++i) {
      const double r = l.tracker.OscillationRatio(options_.thresholds[i]);
      m[Key("osc_ratio_", options_.thresholds[i])] = r;
      above[i] += r * n;
    }
    m["flip_rate"] = n > 0 ? l.last.flips / n : 0.0;
    m["oscillations"] = static_cast<double>(l.last.oscillations);
    m["bits"] = v.bits;
    if (v.latent.defined()) {
      at::Tensor d = ThresholdDistance(v);
      for (double br : options_.low_confidence_ranges) {
        m[Key("low_conf_", br)] = d.le(br).to(at::kDouble).mean().item<double>();
      }
    }
    if (v.latent.defined() && v.bits <= 4 && !options_.thresholds.empty() && v.code_max > v.code_min) {
      // Where the oscillating weights sit (why one quantizer oscillates more
      // than another): per interior threshold t = k + ½, the fraction of the
      // layer's weights with f > τ₀ whose latent is nearest to t. The keys
      // sum to osc_ratio_<τ₀>. Low-bit layers only (at most 15 keys).
      at::Tensor osc = l.tracker.frequency().gt(options_.thresholds[0]).reshape({-1});
      at::Tensor t = v.latent.to(at::kFloat)
                         .floor()
                         .clamp(static_cast<double>(v.code_min), static_cast<double>(v.code_max - 1))
                         .reshape({-1});
      for (int64_t k = v.code_min; k < v.code_max; ++k) {
        m[Key("osc_at_thr_", static_cast<double>(k) + 0.5)] =
            (osc & t.eq(static_cast<double>(k))).to(at::kDouble).mean().item<double>();
      }
    }
    if (v.scale.defined() && v.scale.numel() > 0) {
      at::Tensor s = v.scale.to(at::kDouble);
      m["scale_mean"] = s.mean().item<double>();
      m["scale_std"] = s.numel() > 1 ? s.std().item<double>() : 0.0;
    }
    if (cga != nullptr) {
      const auto& targets = cga->targets();
      for (size_t i = 0; i < targets.size() && i < cga->free_fractions().size(); ++i) {
        if (v.param.defined() && targets[i].param.is_same(v.param)) m["cga_free_frac"] = cga->free_fractions()[i];
      }
    }
    total += l.last.numel;
    flips += l.last.flips;
    oscs += l.last.oscillations;
  }
  if (total > 0) {
    auto* p = out.add_layers();
    p->set_step(step);
    p->set_layer("model");
    auto& m = *p->mutable_values();
    for (size_t i = 0; i < options_.thresholds.size(); ++i) {
      m[Key("osc_ratio_", options_.thresholds[i])] = above[i] / static_cast<double>(total);
    }
    m["flip_rate"] = static_cast<double>(flips) / static_cast<double>(total);
    m["oscillations"] = static_cast<double>(oscs);
    if (cga != nullptr) m["cga_free_frac"] = cga->free_fraction();
  }
  return out;
}

std::vector<pendulum::v1::WeightSnapshot> OscillationMonitor::Snapshots(int64_t step, int top_k) const {
  std::vector<pendulum::v1::WeightSnapshot> out;
  for (const Layer& l : layers_) {
    if (l.tracker.initialized()) out.push_back(l.tracker.Snapshot(step, l.name, top_k));
  }
  return out;
}

double OscillationMonitor::OscillationRatio(double tau) const {
  double above = 0, total = 0;
  for (const Layer& l : layers_) {
    if (!l.tracker.initialized()) continue;
    const double n = static_cast<double>(l.tracker.k_prev().numel());
    above += l.tracker.OscillationRatio(tau) * n;
    total += n;
  }
  return total > 0 ? above / total : 0.0;
}

double OscillationMonitor::OscillationRatio(double tau, int bits) const {
  double above = 0, total = 0;
  for (const Layer& l : layers_) {
    if (!l.tracker.initialized() || !l.source->has_quant_view() || l.source->quant_view().bits != bits) continue;
    const double n = static_cast<double>(l.tracker.k_prev().numel());
    above += l.tracker.OscillationRatio(tau) * n;
    total += n;
  }
  return total > 0 ? above / total : 0.0;
}

double OscillationMonitor::FlipRate(int bits) const {
  double flips = 0, total = 0;
  for (const Layer& l : layers_) {
    if (!l.tracker.initialized() || !l.source->has_quant_view() || l.source->quant_view().bits != bits) continue;
    flips += static_cast<double>(l.last.flips);
    total += static_cast<double>(l.last.numel);
  }
  return total > 0 ? flips / total : 0.0;
}

int64_t OscillationMonitor::tracked_weights() const {
  int64_t n = 0;
  for (const Layer& l : layers_) {
    if (l.tracker.initialized()) n += l.tracker.k_prev().numel();
  }
  return n;
}

void OscillationMonitor::Save(torch::serialize::OutputArchive& archive) const {
  static const char* kParts[] = {"k_prev", "dir_last", "f", "count"};
  for (const Layer& l : layers_) {
    std::vector<at::Tensor> st = l.tracker.State();
    for (size_t i = 0; i < st.size(); ++i) archive.write("oscillation/" + l.name + "." + kParts[i], st[i], true);
  }
}

void OscillationMonitor::Load(torch::serialize::InputArchive& archive) {
  static const char* kParts[] = {"k_prev", "dir_last", "f", "count"};
  for (Layer& l : layers_) {
    std::vector<at::Tensor> st(4);
    bool found = true;
    for (size_t i = 0; i < 4; ++i) {
      if (!archive.try_read("oscillation/" + l.name + "." + kParts[i], st[i], true)) found = false;
    }
    if (found) l.tracker.LoadState(st);
  }
}

}  // namespace pendulum::train::quant
