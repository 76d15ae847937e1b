// Unit checks of AdamP (methods.md §7.3): equals AdamW when nothing is
// 2-D, the projected update is orthogonal to w per channel, the layer view
// fires when only the whole tensor is scale-invariant, stats and save/load.

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/optim/adamw.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "gtest/gtest.h"
#include "worker/train/optim/adamp.h"
#include "worker/train/optim/projection.h"
#include "worker/train/optim/projection_scalars.h"

namespace pendulum::train::optim {
namespace {

at::Tensor RandD(std::vector<int64_t> shape) { return at::randn(shape, at::TensorOptions().dtype(at::kDouble)); }

// A gradient orthogonal to p in every row (what a scale-invariant weight gets).
at::Tensor RowOrthogonalGrad(const at::Tensor& p) {
  at::Tensor g = at::randn_like(p);
  at::Tensor pv = p.reshape({p.size(0), -1});
  at::Tensor gv = g.reshape({p.size(0), -1});
  at::Tensor coef = (gv * pv).sum(1, true) / (pv * pv).sum(1, true);
  return (gv - coef * pv).reshape(p.sizes());
}

TEST(AdamPTest, WithoutTwoDimParamsEqualsAdamW) {
  at::manual_seed(7);
  std::vector<at::Tensor> a = {RandD({5}), RandD({3})};
  std::vector<at::Tensor> b = {a[0].clone(), a[1].clone()};
  AdamP adamp(a, AdamPOptions(0.01).weight_decay(0.1).betas(std::make_tuple(0.9, 0.99)));
  torch::optim::AdamW adamw(b, torch::optim::AdamWOptions(0.01).weight_decay(0.1).betas(std::make_tuple(0.9, 0.99)));
  for (int step = 0; step < 10; ++step) {
    for (size_t i = 0; i < a.size(); ++i) {
      at::Tensor g = RandD({a[i].size(0)});
      a[i].mutable_grad() = g.clone();
      b[i].mutable_grad() = g.clone();
    }
    adamp.step();
    adamw.step();
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_LE((a[i] - b[i]).abs().max().item<double>(), 1e-6) << "step " << step << " param " << i;
    }
  }
  for (const auto& s : adamp.last_step_stats()) EXPECT_EQ(s.projection.view, ProjectionView::kNotTested);
}

TEST(AdamPTest, ProjectedUpdateIsOrthogonalToWeightPerChannel) {
  at::manual_seed(11);
  at::Tensor p = RandD({6, 3, 2, 2});  // a conv weight
  at::Tensor grad = RowOrthogonalGrad(p);
  at::Tensor update = RandD({6, 3, 2, 2});
  ProjectionOutcome out = ProjectRadial(p, grad, update, 0.1, 0.1, 1e-8);
  ASSERT_EQ(out.view, ProjectionView::kChannel);
  EXPECT_DOUBLE_EQ(out.wd_factor, 0.1);
  EXPECT_LT(out.max_cos_channel, 1e-10);
  at::Tensor dots = (update * p).reshape({6, -1}).sum(1);
  at::Tensor scale = update.reshape({6, -1}).norm(2, {1}) * p.reshape({6, -1}).norm(2, {1});
  EXPECT_LT((dots / scale).abs().max().item<double>(), 1e-8);

  // Through the optimizer (wd 0): every row of Δw is orthogonal to its row of w.
  at::Tensor w = p.clone();
  AdamP opt(std::vector<at::Tensor>{w}, AdamPOptions(0.05));
  for (int step = 0; step < 3; ++step) {
    at::Tensor before = w.clone();
    w.mutable_grad() = RowOrthogonalGrad(w);
    opt.step();
    at::Tensor dw = (w - before).reshape({6, -1});
    at::Tensor bw = before.reshape({6, -1});
    at::Tensor cos = (dw * bw).sum(1) / (dw.norm(2, {1}) * bw.norm(2, {1}));
    EXPECT_LT(cos.abs().max().item<double>(), 1e-6) << "step " << step;
    EXPECT_EQ(opt.last_step_stats().at(0).projection.view, ProjectionView::kChannel);
  }
}

TEST(AdamPTest, LayerViewFiresWhenOnlyTheWholeTensorIsOrthogonal) {
  // Rows are parallel to their gradient rows (channel test fails), but the
  // rows cancel globally (layer test passes).
  at::Tensor p = at::tensor({1.0, 0.0, 1.0, 0.0}, at::kDouble).reshape({2, 2});
  at::Tensor g = at::tensor({1.0, 0.0, -1.0, 0.0}, at::kDouble).reshape({2, 2});
  at::Tensor u = at::tensor({0.3, -0.2, 0.5, 0.7}, at::kDouble).reshape({2, 2});
  ProjectionOutcome out = ProjectRadial(p, g, u, 0.1, 0.25, 1e-8);
  EXPECT_EQ(out.view, ProjectionView::kLayer);
  EXPECT_NEAR(out.max_cos_channel, 1.0, 1e-12);
  EXPECT_NEAR(out.max_cos_layer, 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(out.wd_factor, 0.25);
  EXPECT_NEAR((u * p).sum().item<double>(), 0.0, 1e-7);  // whole-tensor orthogonality (up to eps in p̂)

  // Neither view: g parallel to p.
  at::Tensor u2 = at::ones({2, 2}, at::kDouble);
  ProjectionOutcome none = ProjectRadial(p, p.clone(), u2, 0.1, 0.25, 1e-8);
  EXPECT_EQ(none.view, ProjectionView::kNone);
  EXPECT_DOUBLE_EQ(none.wd_factor, 1.0);
  EXPECT_TRUE(at::equal(u2, at::ones({2, 2}, at::kDouble)));
}

TEST(AdamPTest, ThresholdScalesWithRowLength) {
  // |cos| = 0.04: below 0.1/sqrt(4) = 0.05 (fires), above 0.1/sqrt(16) = 0.025 (does not).
  auto make = [](int64_t n) {
    at::Tensor p = at::zeros({1, n}, at::kDouble);
    p[0][0] = 1.0;
    at::Tensor g = at::zeros({1, n}, at::kDouble);
    g[0][0] = 0.04;
    g[0][1] = std::sqrt(1 - 0.04 * 0.04);
    return std::make_pair(p, g);
  };
  auto [p4, g4] = make(4);
  at::Tensor u4 = at::ones({1, 4}, at::kDouble);
  EXPECT_EQ(ProjectRadial(p4, g4, u4, 0.1, 0.1, 1e-8).view, ProjectionView::kChannel);
  auto [p16, g16] = make(16);
  at::Tensor u16 = at::ones({1, 16}, at::kDouble);
  EXPECT_EQ(ProjectRadial(p16, g16, u16, 0.1, 0.1, 1e-8).view, ProjectionView::kNone);
}

TEST(AdamPTest, StatsReportEffectiveStepAndFractionProjected) {
  at::manual_seed(3);
  at::Tensor w = RandD({4, 8});
  at::Tensor b = RandD({4});
  AdamP opt(std::vector<at::Tensor>{w, b}, AdamPOptions(0.01));
  opt.set_collect_step_stats(true);
  at::Tensor w0 = w.clone();
  w.mutable_grad() = RowOrthogonalGrad(w);
  b.mutable_grad() = RandD({4});
  opt.step();
  const auto& stats = opt.last_step_stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].projection.view, ProjectionView::kChannel);
  EXPECT_EQ(stats[1].projection.view, ProjectionView::kNotTested);
  EXPECT_NEAR(stats[0].norm_before, w0.norm().item<double>(), 1e-12);
  EXPECT_NEAR(stats[0].norm_after, w.norm().item<double>(), 1e-12);
  EXPECT_NEAR(stats[0].effective_step, (w - w0).norm().item<double>() / w0.norm().item<double>(), 1e-12);
  EXPECT_GT(stats[0].angle_rad, 0.0);
  const auto& c = opt.projection_counters();
  EXPECT_EQ(c.tested, 1);
  EXPECT_EQ(c.channel, 1);
  EXPECT_EQ(c.not_tested, 1);
  EXPECT_DOUBLE_EQ(c.FractionProjected(opt.stepped_numel()), 32.0 / 36.0);
  std::map<std::string, double> values;
  AppendProjectionScalars(opt, {{"conv.weight", "conv.bias"}}, &values);
  EXPECT_DOUBLE_EQ(values.at("adamp/fraction_projected"), 32.0 / 36.0);
  EXPECT_DOUBLE_EQ(values.at("adamp/channel_share"), 1.0);
  EXPECT_DOUBLE_EQ(values.at("adamp/conv.weight/view"), 1.0);
  EXPECT_NEAR(values.at("adamp/conv.weight/effective_step"), stats[0].effective_step, 1e-15);
  EXPECT_EQ(values.count("adamp/conv.bias/view"), 0u);  // 1-D: never tested
  opt.ResetProjectionCounters();
  EXPECT_EQ(opt.projection_counters().tested, 0);
}

TEST(AdamPTest, SaveAndLoadResumeIdentically) {
  at::manual_seed(5);
  at::Tensor w = RandD({4, 8});
  AdamPOptions options = AdamPOptions(0.01).weight_decay(0.05);
  AdamP opt(std::vector<at::Tensor>{w}, options);
  for (int i = 0; i < 3; ++i) {
    w.mutable_grad() = RandD({4, 8});
    opt.step();
  }
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    opt.save(archive);
    archive.save_to(buffer);
  }
  at::Tensor w2 = w.clone();
  AdamP restored(std::vector<at::Tensor>{w2}, AdamPOptions(0.5));  // options come from the archive
  {
    torch::serialize::InputArchive archive;
    archive.load_from(buffer);
    restored.load(archive);
  }
  EXPECT_DOUBLE_EQ(static_cast<const AdamPOptions&>(restored.param_groups()[0].options()).lr(), 0.01);
  for (int i = 0; i < 2; ++i) {
    at::Tensor g = RandD({4, 8});
    w.mutable_grad() = g.clone();
    w2.mutable_grad() = g.clone();
    opt.step();
    restored.step();
  }
  EXPECT_TRUE(at::equal(w, w2));
}

TEST(AdamPTest, RejectsBadOptions) {
  at::Tensor w = RandD({2, 2});
  EXPECT_THROW(AdamP(std::vector<at::Tensor>{w}, AdamPOptions(-1.0)), c10::Error);
  EXPECT_THROW(AdamP(std::vector<at::Tensor>{w}, AdamPOptions(0.1).delta(0)), c10::Error);
  EXPECT_THROW(AdamP(std::vector<at::Tensor>{w}, AdamPOptions(0.1).wd_ratio(2)), c10::Error);
}

}  // namespace
}  // namespace pendulum::train::optim
