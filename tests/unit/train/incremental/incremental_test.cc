// Unit checks of methods.md §7.2 and the incremental building blocks:
// aligning equalises the mean norms and a second align gives γ = 1, the bias
// is never touched, clipping, herding picks the exact greedy sequence on a
// 2-D toy, the memory shrinks to its herding prefix and survives save/load,
// the class order is numpy's permutation for seed 1993, and scenarios.

#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "gtest/gtest.h"
#include "worker/train/incremental/class_order.h"
#include "worker/train/incremental/exemplar_memory.h"
#include "worker/train/incremental/herding.h"
#include "worker/train/incremental/kd_loss.h"
#include "worker/train/incremental/scenario.h"
#include "worker/train/incremental/weight_aligner.h"

namespace pendulum::train::incremental {
namespace {

TEST(WeightAlignerTest, AlignEqualisesMeanNormsAndSecondAlignIsIdentity) {
  at::manual_seed(0);
  for (int norm : {1, 2}) {
    at::Tensor w = at::rand({10, 6}, at::kDouble);
    w.narrow(0, 6, 4).mul_(3.0);  // new rows larger, as after training without WA
    const at::Tensor old_rows = w.narrow(0, 0, 6).clone();
    WeightAlignResult r = AlignWeights(w, 6, {norm, false});
    EXPECT_LT(r.gamma, 1.0);
    EXPECT_GT(r.mean_new_norm_before, r.mean_old_norm_before);
    EXPECT_NEAR(r.mean_new_norm_after, r.mean_old_norm_after, 1e-12) << "norm " << norm;
    EXPECT_NEAR(MeanRowNorm(w, 6, 10, norm), MeanRowNorm(w, 0, 6, norm), 1e-12);
    EXPECT_TRUE(at::equal(w.narrow(0, 0, 6), old_rows));  // only the new rows move
    WeightAlignResult again = AlignWeights(w, 6, {norm, false});
    EXPECT_NEAR(again.gamma, 1.0, 1e-12) << "norm " << norm;  // §2.5 Trap 5
  }
}

TEST(WeightAlignerTest, ClampKeepsGammaAtMostOne) {
  at::Tensor w = at::ones({4, 3}, at::kDouble);
  w.narrow(0, 2, 2).mul_(0.5);  // new rows SMALLER: raw γ = 2
  WeightAlignResult r = AlignWeights(w, 2, {2, true});
  EXPECT_NEAR(r.raw_gamma, 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.gamma, 1.0);
  EXPECT_TRUE(at::equal(w.narrow(0, 2, 2), at::full({2, 3}, 0.5, at::kDouble)));
  WeightAlignResult unclamped = AlignWeights(w, 2, {2, false});
  EXPECT_NEAR(unclamped.gamma, 2.0, 1e-12);
}

TEST(WeightAlignerTest, NoOldClassesMeansNoAlignment) {
  at::Tensor w = at::rand({5, 3});
  const at::Tensor before = w.clone();
  EXPECT_DOUBLE_EQ(AlignWeights(w, 0, {}).gamma, 1.0);
  EXPECT_TRUE(at::equal(w, before));
}

TEST(WeightAlignerTest, ClipZeroesNegativeWeights) {
  at::Tensor w = at::tensor({-1.0, 0.5, -0.2, 2.0}).reshape({2, 2}).set_requires_grad(true);
  ClipWeightsNonNegative(w);
  EXPECT_TRUE(at::equal(w.detach(), at::tensor({0.0, 0.5, 0.0, 2.0}).reshape({2, 2})));
}

// Brute force of PyCIL's loop with explicit deletion (the spec's formula).
std::vector<int64_t> ReferenceHerding(const std::vector<std::vector<double>>& feats, int64_t m) {
  std::vector<std::vector<double>> v;
  for (const auto& f : feats) {
    const double n = std::sqrt(f[0] * f[0] + f[1] * f[1]) + 1e-8;
    v.push_back({f[0] / n, f[1] / n});
  }
  double mu[2] = {0, 0};
  for (const auto& x : v) {
    mu[0] += x[0] / v.size();
    mu[1] += x[1] / v.size();
  }
  std::vector<int64_t> remaining;
  for (size_t i = 0; i < v.size(); ++i) remaining.push_back(static_cast<int64_t>(i));
  std::vector<int64_t> picked;
  double s[2] = {0, 0};
  for (int64_t k = 1; k <= m; ++k) {
    double best = std::numeric_limits<double>::infinity();
    size_t best_pos = 0;
    for (size_t pos = 0; pos < remaining.size(); ++pos) {
      const auto& x = v[static_cast<size_t>(remaining[pos])];
      const double dx = mu[0] - (s[0] + x[0]) / k, dy = mu[1] - (s[1] + x[1]) / k;
      const double d = std::sqrt(dx * dx + dy * dy);
      if (d < best) {
        best = d;
        best_pos = pos;
      }
    }
    const int64_t i = remaining[best_pos];
    picked.push_back(i);
    s[0] += v[static_cast<size_t>(i)][0];
    s[1] += v[static_cast<size_t>(i)][1];
    remaining.erase(remaining.begin() + static_cast<long>(best_pos));
  }
  return picked;
}

TEST(HerdingTest, PicksTheExactGreedySequenceOnATwoDimToy) {
  // Hand-checkable: the normalised points are at angles 0°, 90°, 45°, 180°, 30°.
  // μ ≈ (0.3146, 0.4414). k=1: the point nearest μ is 45° (index 2).
  const std::vector<std::vector<double>> toy = {{2, 0}, {0, 3}, {1, 1}, {-1, 0}, {std::sqrt(3.0), 1}};
  at::Tensor f = at::tensor({2.0, 0.0, 0.0, 3.0, 1.0, 1.0, -1.0, 0.0, std::sqrt(3.0), 1.0}, at::kDouble).reshape({5, 2});
  std::vector<int64_t> picked = HerdingSelect(f, 5);
  ASSERT_EQ(picked.size(), 5u);
  EXPECT_EQ(picked[0], 2);
  EXPECT_EQ(picked, ReferenceHerding(toy, 5));
  // A smaller m is a prefix, which is how memory shrinks.
  EXPECT_EQ(HerdingSelect(f, 3), std::vector<int64_t>(picked.begin(), picked.begin() + 3));
  // m beyond N is capped.
  EXPECT_EQ(HerdingSelect(f, 9).size(), 5u);

  at::manual_seed(4);
  at::Tensor cloud = at::randn({40, 2}, at::kDouble) + at::tensor({1.0, 0.5}, at::kDouble);
  std::vector<std::vector<double>> pts;
  for (int64_t i = 0; i < 40; ++i) pts.push_back({cloud[i][0].item<double>(), cloud[i][1].item<double>()});
  EXPECT_EQ(HerdingSelect(cloud, 12), ReferenceHerding(pts, 12));
}

TEST(ExemplarMemoryTest, ShrinksToHerdingPrefixAndRoundTrips) {
  ExemplarMemory memory(12);
  EXPECT_EQ(memory.PerClass(2), 6);
  memory.Set(0, {5, 3, 9, 1, 7, 2});
  memory.Set(1, {10, 11, 12, 13, 14, 15});
  memory.ShrinkTo(memory.PerClass(4));  // two new classes arrive: 3 per class
  EXPECT_EQ(memory.classes().at(0), (std::vector<int64_t>{5, 3, 9}));
  EXPECT_EQ(memory.classes().at(1), (std::vector<int64_t>{10, 11, 12}));
  memory.Set(2, {20, 21, 22});
  memory.Set(3, {30, 31, 32});
  EXPECT_EQ(memory.size(), 12);

  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    memory.Save(archive);
    archive.save_to(buffer);
  }
  ExemplarMemory loaded;
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  ASSERT_TRUE(loaded.Load(in).ok());
  EXPECT_EQ(loaded.budget(), 12);
  EXPECT_EQ(loaded.classes(), memory.classes());
  EXPECT_EQ(loaded.AllExemplars().size(), 12u);
}

TEST(ClassOrderTest, Seed1993GivesPyCilsCifar100Order) {
  // PyCIL logs this order for CIFAR-100 with seed 1993 (np.random.permutation).
  const std::vector<int64_t> head = {68, 56, 78, 8, 23, 84, 90, 65, 74, 76, 40, 89, 3, 92, 55, 9, 26, 80, 43, 38};
  std::vector<int64_t> order = NumpyLegacyPermutation(100, 1993);
  ASSERT_EQ(order.size(), 100u);
  EXPECT_EQ(std::vector<int64_t>(order.begin(), order.begin() + 20), head);
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
}

TEST(ScenarioTest, StagesFromSpec) {
  auto s = Scenario::Make(10, 0, 2, 1993);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->num_stages(), 5);
  EXPECT_EQ(s->KnownBefore(3), 6);
  EXPECT_EQ(s->TotalAfter(3), 8);
  for (int64_t k = 0; k < 10; ++k) EXPECT_EQ(s->OutputOf(s->LabelOf(k)), k);
  EXPECT_EQ(s->class_order(), NumpyLegacyPermutation(10, 1993));

  auto b50 = Scenario::Make(100, 50, 10, 1993);
  ASSERT_TRUE(b50.ok());
  EXPECT_EQ(b50->stage_sizes(), (std::vector<int64_t>{50, 10, 10, 10, 10, 10}));
  auto uneven = Scenario::Make(10, 4, 4, 1);
  ASSERT_TRUE(uneven.ok());
  EXPECT_EQ(uneven->stage_sizes(), (std::vector<int64_t>{4, 4, 2}));

  auto bad = Scenario::Make(10, 11, 0, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("method.incremental.classes_per_stage"), std::string::npos);
  EXPECT_NE(bad.status().message().find("method.incremental.base_classes"), std::string::npos);
}

TEST(IncrementalLossTest, KdTermIsRestrictedToOldLogitsWithoutTSquared) {
  at::manual_seed(9);
  at::Tensor logits = at::randn({4, 5}, at::kDouble);
  at::Tensor old_logits = at::randn({4, 3}, at::kDouble);
  at::Tensor y = at::tensor({0, 4, 3, 1}, at::kLong);
  IncrementalLossTerms t = IncrementalLoss(logits, old_logits, y, 3, 2.0, true);
  EXPECT_DOUBLE_EQ(t.kd_lambda, 0.6);
  // Changing a new-class logit moves CE but not KD.
  at::Tensor shifted = logits.clone();
  shifted.select(1, 4).add_(1.0);
  IncrementalLossTerms t2 = IncrementalLoss(shifted, old_logits, y, 3, 2.0, true);
  EXPECT_NEAR(t2.loss_kd.item<double>(), t.loss_kd.item<double>(), 1e-15);
  EXPECT_NE(t2.loss_ce.item<double>(), t.loss_ce.item<double>());
  // Replay-CE baseline: KD off means plain CE.
  IncrementalLossTerms ce = IncrementalLoss(logits, old_logits, y, 3, 2.0, false);
  EXPECT_DOUBLE_EQ(ce.loss.item<double>(), ce.loss_ce.item<double>());
  EXPECT_FALSE(ce.loss_kd.defined());
}

}  // namespace
}  // namespace pendulum::train::incremental
