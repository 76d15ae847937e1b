// Unit checks of methods.md §7.1 and the §1.8 traps for the OFQ quantizers,
// CGA and the oscillation tracker.

#include <cmath>
#include <set>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)
#include <torch/optim/adamw.h>

#include "gtest/gtest.h"
#include "worker/train/quant/cga.h"
#include "worker/train/quant/lsq_quantizer.h"
#include "worker/train/quant/oscillation_monitor.h"
#include "worker/train/quant/oscillation_tracker.h"
#include "worker/train/quant/quant_act.h"
#include "worker/train/quant/quant_linear.h"
#include "worker/train/quant/statsq_quantizer.h"

namespace pendulum::train::quant {
namespace {

TEST(StatsQTest, TwoBitLevelsAreMidRise) {
  at::manual_seed(1);
  at::Tensor w = at::randn({16, 64}, at::kDouble) * 3;
  StatsQResult r = StatsQuantize(w, 2);
  at::Tensor ratio = r.output / r.scale.unsqueeze(1);
  std::set<double> levels;
  for (int64_t i = 0; i < ratio.numel(); ++i) levels.insert(std::round(ratio.reshape({-1})[i].item<double>() * 1e9) / 1e9);
  EXPECT_EQ(levels, (std::set<double>{-0.75, -0.25, 0.25, 0.75}));  // no zero level (trap 2)
}

TEST(StatsQTest, GradientIsOneOnClippedWeightsAndScaleGetsNone) {
  at::Tensor w = at::tensor({0.01, 0.02, -0.01, 50.0, -40.0, 0.03}, at::kDouble).reshape({1, 6}).set_requires_grad(true);
  StatsQResult r = StatsQuantize(w, 2);
  r.output.sum().backward();
  // 50 and -40 are clipped (|w/s| > 1), still gradient 1 (trap 1).
  EXPECT_TRUE(w.grad().equal(at::ones_like(w)));
  EXPECT_FALSE(r.scale.requires_grad());
}

TEST(StatsQTest, ThreeDWeightAveragesLastThenFirstAxis) {
  at::manual_seed(2);
  at::Tensor w = at::randn({3, 4, 5}, at::kDouble);
  StatsQResult r = StatsQuantize(w, 3);
  at::Tensor expect = w.abs().mean(-1).mean(0) * 2;
  EXPECT_TRUE(at::allclose(r.scale, expect));
}

// LSQ gradient w.r.t. s against the analytic formula of §1.1, and w.r.t. x.
TEST(LsqTest, AnalyticScaleGradient) {
  at::manual_seed(3);
  LsqQuantizerOptions o(2);
  o.granularity(LsqGranularity::kPerOutput);
  at::Tensor x = at::randn({4, 10}, at::kDouble).set_requires_grad(true);
  at::Tensor s = (LsqInitScale(x, o) * 0.9).set_requires_grad(true);
  LsqResult r = LsqFakeQuant(x, s, o);
  r.output.sum().backward();
  const double g = 1.0 / std::sqrt(1.0 * 10);
  at::Tensor v = x.detach() / s.detach().unsqueeze(1);
  at::Tensor inside = v.ge(-2).logical_and(v.le(1));
  at::Tensor k = v.clamp(-2, 1).round();
  at::Tensor ds = at::where(inside, k - v, v.clamp(-2, 1)) ;
  at::Tensor expect_s = (ds.sum(1)) * g;
  EXPECT_TRUE(at::allclose(s.grad(), expect_s, 1e-9, 1e-12)) << s.grad() << expect_s;
  EXPECT_TRUE(x.grad().equal(inside.to(at::kDouble)));
}

// Finite differences on a smooth surrogate: the LSQ scale gradient equals the
// derivative of the quantizer output w.r.t. s with the codes k held fixed
// (round as identity), scaled by g.
TEST(LsqTest, FiniteDifferenceScaleGradientWithCodesFixed) {
  at::manual_seed(4);
  LsqQuantizerOptions o(3);
  o.granularity(LsqGranularity::kPerToken);
  at::Tensor x = at::randn({2, 3, 8}, at::kDouble);
  at::Tensor up = at::randn({2, 3, 8}, at::kDouble);
  at::Tensor s = LsqInitScale(x, o).set_requires_grad(true);
  LsqResult r = LsqFakeQuant(x, s, o);
  (r.output * up).sum().backward();
  const double g = LsqGradScaleFactor(x, o);
  EXPECT_NEAR(g, 1.0 / std::sqrt(3.0 * 2 * 8), 1e-15);  // depends on the batch (trap 6)
  // f(s) = sum(up * (clamp(x/s) + (k - clamp(x/s)).const) * s) with k fixed.
  const double eps = 1e-6;
  at::Tensor k = r.codes;
  auto f = [&](const at::Tensor& sv) {
    at::Tensor c = (x / sv.unsqueeze(-1)).clamp(-4, 3);
    at::Tensor c0 = (x / s.detach().unsqueeze(-1)).clamp(-4, 3);
    return (up * (c + (k - c0)) * sv.unsqueeze(-1)).sum().item<double>();
  };
  for (int64_t i = 0; i < s.numel(); ++i) {
    at::Tensor sp = s.detach().clone(), sm = s.detach().clone();
    sp[i] += eps;
    sm[i] -= eps;
    const double fd = (f(sp) - f(sm)) / (2 * eps) * g;
    EXPECT_NEAR(s.grad()[i].item<double>(), fd, 1e-6);
  }
}

TEST(LsqTest, ScaleFloorUsesEpsButGradientFlows) {
  LsqQuantizerOptions o(2);
  o.granularity(LsqGranularity::kPerTensor);
  at::Tensor x = at::tensor({1e-5, -2e-5}, at::kDouble);
  at::Tensor s = at::tensor({1e-7}, at::kDouble).set_requires_grad(true);
  LsqResult r = LsqFakeQuant(x, s, o);
  EXPECT_NEAR(r.output[0].item<double>(), 1e-5, 1e-10);  // k = 1 at s = 1e-5
  r.output.sum().backward();
  EXPECT_NE(s.grad()[0].item<double>(), 0.0);
}

TEST(LsqTest, OneBitSignedUsesSign) {
  LsqQuantizerOptions o(1);
  o.granularity(LsqGranularity::kPerTensor);
  at::Tensor x = at::tensor({0.3, -0.1, 2.0}, at::kDouble);
  at::Tensor s = at::tensor({0.5}, at::kDouble);
  LsqResult r = LsqFakeQuant(x, s, o);
  EXPECT_TRUE(r.codes.equal(at::tensor({1.0, -1.0, 1.0}, at::kDouble)));
}

TEST(LsqTest, ModuleCreatesScaleAtFirstForward) {
  LsqQuantizer q(LsqQuantizerOptions(4).granularity(LsqGranularity::kPerToken));
  EXPECT_EQ(q->parameters().size(), 0u);  // trap 9: nothing for an optimizer yet
  at::Tensor x = at::randn({2, 5, 8});
  q->forward(x);
  ASSERT_EQ(q->parameters().size(), 1u);
  EXPECT_EQ(q->scale().size(0), 5);
  EXPECT_TRUE(at::allclose(q->scale(), x.abs().mean(-1).mean(0) * 2 / std::sqrt(7.0)));
}

TEST(QuantActTest, ShiftsAndUnsignedRange) {
  QuantAct a(QuantActOptions(8, 2).all_positive(true));
  at::Tensor x = at::rand({2, 3, 8});
  at::Tensor y = a->forward(x);
  EXPECT_EQ(a->named_parameters().size(), 3u);  // move_b4, move_aft, quant.s
  at::Tensor k = y / a->quant->scale().unsqueeze(-1);
  EXPECT_GE(k.min().item<double>(), -1e-6);
  EXPECT_LE(k.max().item<double>(), 3 + 1e-5);
}

TEST(QuantLinearTest, FullPrecisionWhenQuantizationOff) {
  QuantLinear l(QuantLinearOptions(6, 4));
  at::Tensor x = at::randn({3, 6});
  EXPECT_TRUE(at::allclose(l->forward(x), at::linear(x, l->weight, l->bias)));
  EXPECT_FALSE(l->has_quant_view());
}

TEST(QuantLinearTest, StatsQViewHasCodesOfTheTrainedForward) {
  QuantLinear l(QuantLinearOptions(6, 4).weight_quant(WeightQuant::kStatsQ).weight_bits(2).act_bits(4));
  l->train();
  at::Tensor x = at::randn({2, 3, 6});
  l->forward(x);
  ASSERT_TRUE(l->has_quant_view());
  QuantWeightView v = l->quant_view();
  StatsQResult r = StatsQuantize(l->weight, 2);
  EXPECT_TRUE(v.codes.equal(r.codes));
  EXPECT_TRUE(v.cga_target);
}

// Brute-force threshold distance per weight: free iff some interior threshold
// t = i + ½ (i in [min k, max k)) lies within BR of z.
TEST(CgaTest, MaskMatchesBruteForceThresholdDistance) {
  at::manual_seed(5);
  for (int bits : {2, 3, 4}) {
    for (double br : {0.005, 0.05, 0.2}) {
      at::Tensor w = at::randn({12, 40}, at::kDouble);
      at::Tensor mask = CgaFreezeMask(w, bits, br);
      at::Tensor s = w.abs().mean(1, true) * 2;
      at::Tensor z = (w / s).clamp(-1, 0.9999989867210388) * std::pow(2.0, bits - 1) - 0.5;
      const int64_t kmin = z.round().min().item<int64_t>(), kmax = z.round().max().item<int64_t>();
      int64_t free_count = 0;
      for (int64_t i = 0; i < w.numel(); ++i) {
        const double zi = z.reshape({-1})[i].item<double>();
        bool is_free = false;
        for (int64_t t = kmin; t < kmax; ++t) {
          if (std::abs(zi - (t + 0.5)) <= br + 1e-12) is_free = true;
        }
        free_count += is_free;
        EXPECT_EQ(mask.reshape({-1})[i].item<double>(), is_free ? 0.0 : 1.0) << "bits " << bits << " br " << br;
      }
      if (br == 0.2) EXPECT_GT(free_count, 0);
    }
  }
}

// Trap 4: zeroing the gradient alone lets AdamW's decay and momentum move
// frozen weights; RestoreFrozen puts them back exactly.
TEST(CgaTest, FrozenWeightsRestoredAfterAdamWStep) {
  at::manual_seed(6);
  at::Tensor w = at::randn({8, 32}).set_requires_grad(true);
  torch::optim::AdamW opt({w}, torch::optim::AdamWOptions(0.1).weight_decay(0.5));
  ConfidenceGuidedAnnealing cga({CgaTarget{"w", w, 2}}, 0.05);
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    (StatsQuantize(w, 2).output * at::randn({8, 32})).sum().backward();
    at::Tensor frozen = CgaFreezeMask(w, 2, 0.05).to(at::kBool);  // from current w
    at::Tensor before = w.detach().clone();
    cga.MaskGradients();
    EXPECT_TRUE(w.grad().masked_select(frozen).abs().max().item<float>() == 0.0f);
    opt.step();
    if (step > 0) EXPECT_FALSE(w.detach().masked_select(frozen).equal(before.masked_select(frozen)));
    cga.RestoreFrozen();
    EXPECT_TRUE(w.detach().masked_select(frozen).equal(before.masked_select(frozen)));
    EXPECT_GT(cga.free_fraction(), 0.0);
    EXPECT_LT(cga.free_fraction(), 0.5);
  }
}

TEST(OscillationTrackerTest, CodeSequence0101GivesTwoOscillations) {
  OscillationTracker t;
  int64_t total = 0;
  for (double k : {0.0, 1.0, 0.0, 1.0}) total += t.Update(at::full({1}, k)).oscillations;
  EXPECT_EQ(total, 2);
  EXPECT_EQ(t.count().item<int>(), 2);
  EXPECT_LE(t.bytes_per_weight(), 8);
  // f = 0.01 after the first reversal, then 0.01 + 0.99·0.01.
  EXPECT_NEAR(t.frequency().item<float>(), 0.01 * 0.99 + 0.01, 2e-5);
}

TEST(OscillationTrackerTest, MonotoneDriftIsNotOscillation) {
  OscillationTracker t;
  int64_t total = 0, flips = 0;
  for (double k : {-2.0, -1.0, 0.0, 1.0, 1.0, 1.0}) {
    auto st = t.Update(at::full({1}, k));
    total += st.oscillations;
    flips += st.flips;
  }
  EXPECT_EQ(total, 0);
  EXPECT_EQ(flips, 3);
}

TEST(OscillationTrackerTest, SnapshotTopKHasCoordinatesAndCounts) {
  OscillationTracker t;
  // Weight (1, 2) of a 2×3 tensor flips every step, (0, 0) every other step.
  for (int step = 0; step < 20; ++step) {
    at::Tensor k = at::zeros({2, 3});
    k[1][2] = step % 2;
    k[0][0] = (step / 2) % 2;
    t.Update(k);
  }
  pendulum::v1::WeightSnapshot snap = t.Snapshot(20, "blocks.0.mlp.fc1", 2);
  ASSERT_EQ(snap.top_size(), 2);
  EXPECT_EQ(snap.top(0).index(), 5);
  EXPECT_EQ(snap.top(0).coords(0), 1);
  EXPECT_EQ(snap.top(0).coords(1), 2);
  EXPECT_EQ(snap.top(0).count(), 18);
  EXPECT_EQ(snap.top(1).index(), 0);
  EXPECT_GT(snap.top(0).frequency(), snap.top(1).frequency());
  int64_t hist_total = 0;
  for (int64_t c : snap.hist_counts()) hist_total += c;
  EXPECT_EQ(hist_total, 6);
  EXPECT_EQ(snap.shape_size(), 2);
}

// osc_at_thr_<t> attributes each oscillating weight to the threshold its
// latent sits nearest to, and the keys add up to the oscillation ratio. Row 0
// entry 0 flips across W = 0 (StatsQ z = -0.5, the threshold LSQ does not
// have: there 0 is a level); row 1 entry 0 across W = s/2 (z = +0.5). The
// other weights sit still at ±1.
TEST(OscillationMonitorTest, OscillatingWeightsAreAttributedToTheirThreshold) {
  struct Net : torch::nn::Module {
    QuantLinear fc{nullptr};
    Net() { fc = register_module("fc", QuantLinear(QuantLinearOptions(8, 2).weight_quant(WeightQuant::kStatsQ)
                                                        .weight_bits(2).bias(false))); }
  };
  auto net = std::make_shared<Net>();
  net->train();
  OscillationMonitor monitor;
  monitor.Attach(net);
  const at::Tensor x = at::randn({4, 8});
  for (int step = 1; step <= 8; ++step) {
    {
      at::NoGradGuard no_grad;
      // Fixed entries at least 0.13 (in z) from every threshold.
      at::Tensor w = at::tensor({0.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0,  //
                                 0.0, 2.0, -2.0, 2.0, -0.2, 0.2, -2.0, 2.0},
                                at::kFloat)
                         .reshape({2, 8});
      w[0][0] = step % 2 ? 0.01 : -0.01;  // s ≈ 1.75: z = -0.489 / -0.511
      w[1][0] = step % 2 ? 1.52 : 1.45;   // s ≈ 2.97: z = 0.520 / 0.479
      net->fc->weight.copy_(w);
    }
    net->fc->forward(x);
    monitor.Step(step);
  }
  const QuantWeightView v = net->fc->quant_view();
  ASSERT_EQ(v.codes[0][0].item<float>(), -1.0f);  // step 8: w = -0.01
  ASSERT_EQ(v.codes[1][0].item<float>(), 0.0f);   // step 8: w = 1.45
  pendulum::v1::OscillationStats stats = monitor.Stats(8);
  const pendulum::v1::LayerOscillationPoint* fc = nullptr;
  for (const auto& l : stats.layers()) {
    if (l.layer() == "fc") fc = &l;
  }
  ASSERT_NE(fc, nullptr);
  const auto& m = fc->values();
  ASSERT_EQ(m.count("osc_at_thr_-1.5"), 1u);
  ASSERT_EQ(m.count("osc_at_thr_-0.5"), 1u);
  ASSERT_EQ(m.count("osc_at_thr_0.5"), 1u);
  EXPECT_EQ(m.count("osc_at_thr_1.5"), 0u);  // not an interior threshold at 2 bits
  EXPECT_DOUBLE_EQ(m.at("osc_at_thr_-0.5"), 1.0 / 16);
  EXPECT_DOUBLE_EQ(m.at("osc_at_thr_0.5"), 1.0 / 16);
  EXPECT_DOUBLE_EQ(m.at("osc_at_thr_-1.5"), 0.0);
  EXPECT_DOUBLE_EQ(m.at("osc_ratio_0.005"), 2.0 / 16);
}

TEST(OscillationTrackerTest, StateRoundTrip) {
  OscillationTracker a, b;
  for (double k : {0.0, 1.0, 0.0}) a.Update(at::full({3}, k));
  b.LoadState(a.State());
  EXPECT_EQ(a.Update(at::full({3}, 1.0)).oscillations, b.Update(at::full({3}, 1.0)).oscillations);
  EXPECT_TRUE(a.frequency().equal(b.frequency()));
}

}  // namespace
}  // namespace pendulum::train::quant
