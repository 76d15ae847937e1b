// Unit checks of SGDP (methods.md §7.3): the decay factor of a projected
// tensor is 1 − lr·wd·wd_ratio/(1−μ) (and 1 − lr·wd/(1−μ) otherwise), the
// momentum buffer follows the reference quirk, save/load, and the factory.

#include <cmath>
#include <iostream>
#include <memory>
#include <sstream>
#include <vector>

#include <ATen/ATen.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "gtest/gtest.h"
#include "worker/train/optim/adamp.h"
#include "worker/train/optim/param_state_key.h"
#include "worker/train/optim/projected_optimizer_factory.h"
#include "worker/train/optim/sgdp.h"

namespace pendulum::train::optim {
namespace {

at::Tensor RandD(std::vector<int64_t> shape) { return at::randn(shape, at::TensorOptions().dtype(at::kDouble)); }

TEST(SGDPTest, DecayFactorIsDividedByOneMinusMomentum) {
  // A zero gradient is orthogonal to everything, so the 2-D tensor is
  // projected; its update is zero, leaving only the decay.
  at::manual_seed(1);
  const double lr = 0.1, wd = 0.05, wd_ratio = 0.2, mu = 0.9;
  at::Tensor w = RandD({3, 5});
  at::Tensor b = RandD({3});
  const at::Tensor w0 = w.clone(), b0 = b.clone();
  SGDP opt(std::vector<at::Tensor>{w, b}, SGDPOptions(lr).momentum(mu).weight_decay(wd).wd_ratio(wd_ratio));
  w.mutable_grad() = at::zeros_like(w);
  b.mutable_grad() = at::zeros_like(b);
  opt.step();
  EXPECT_EQ(opt.last_step_stats().at(0).projection.view, ProjectionView::kChannel);
  EXPECT_LE((w - w0 * (1 - lr * wd * wd_ratio / (1 - mu))).abs().max().item<double>(), 1e-15);
  EXPECT_LE((b - b0 * (1 - lr * wd / (1 - mu))).abs().max().item<double>(), 1e-15);
}

TEST(SGDPTest, WithoutNesterovTheStoredBufferIsProjected) {
  at::manual_seed(2);
  at::Tensor w = RandD({4, 6});
  SGDP opt(std::vector<at::Tensor>{w}, SGDPOptions(0.1).momentum(0.9));
  // Gradient orthogonal per row → projection fires; the buffer (= d_p) gets
  // its radial part removed in place, as in clovaai/AdamP sgdp.py.
  at::Tensor g = RandD({4, 6});
  at::Tensor coef = (g * w).sum(1, true) / (w * w).sum(1, true);
  g = g - coef * w;
  const at::Tensor w0 = w.clone();
  w.mutable_grad() = g;
  opt.step();
  const auto& state = static_cast<const SGDPParamState&>(*opt.state().at(ParamStateKey(w)));
  at::Tensor expected_buf = g.clone();
  at::Tensor p_n = w0 / (w0.norm(2, {1}, true) + 1e-8);
  expected_buf -= p_n * (p_n * expected_buf).sum(1, true);
  EXPECT_LE((state.momentum_buffer() - expected_buf).abs().max().item<double>(), 1e-12);
}

TEST(SGDPTest, SaveAndLoadResumeIdentically) {
  at::manual_seed(5);
  at::Tensor w = RandD({4, 8});
  SGDP opt(std::vector<at::Tensor>{w}, SGDPOptions(0.1).momentum(0.9).nesterov(true).weight_decay(1e-3));
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
  SGDP restored(std::vector<at::Tensor>{w2}, SGDPOptions(0.7));
  {
    torch::serialize::InputArchive archive;
    archive.load_from(buffer);
    restored.load(archive);
  }
  EXPECT_DOUBLE_EQ(static_cast<const SGDPOptions&>(restored.param_groups()[0].options()).lr(), 0.1);
  EXPECT_TRUE(static_cast<const SGDPOptions&>(restored.param_groups()[0].options()).nesterov());
  for (int i = 0; i < 2; ++i) {
    at::Tensor g = RandD({4, 8});
    w.mutable_grad() = g.clone();
    w2.mutable_grad() = g.clone();
    opt.step();
    restored.step();
  }
  EXPECT_TRUE(at::equal(w, w2));
}

// methods.md §7.3 (a) in miniature: maximising cos(w, w*) (a scale-invariant
// objective) with momentum SGD inflates ‖w‖; SGDP keeps it near 1 and converges.
double NormAfterToy(bool sgdp, double momentum, double* final_cos) {
  at::Tensor w = at::tensor({1.0, 0.0}, at::kDouble).reshape({1, 2}).set_requires_grad(true);
  const at::Tensor target = at::tensor({-0.6, 0.8}, at::kDouble).reshape({1, 2});
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (sgdp) {
    opt = std::make_unique<SGDP>(std::vector<at::Tensor>{w}, SGDPOptions(0.1).momentum(momentum));
  } else {
    opt = std::make_unique<torch::optim::SGD>(std::vector<at::Tensor>{w}, torch::optim::SGDOptions(0.1).momentum(momentum));
  }
  for (int t = 0; t < 500; ++t) {
    opt->zero_grad();
    (-(w * target).sum() / (w.norm() * target.norm())).backward();
    opt->step();
  }
  *final_cos = ((w * target).sum() / (w.norm() * target.norm())).item<double>();
  return w.norm().item<double>();
}

TEST(SGDPTest, NormGrowthToyKeepsNormNearOne) {
  double cos_sgd9, cos_sgd99, cos_sgdp9, cos_sgdp99;
  const double sgd9 = NormAfterToy(false, 0.9, &cos_sgd9);
  const double sgd99 = NormAfterToy(false, 0.99, &cos_sgd99);
  const double sgdp9 = NormAfterToy(true, 0.9, &cos_sgdp9);
  const double sgdp99 = NormAfterToy(true, 0.99, &cos_sgdp99);
  std::cout << "norm after 500 steps (lr 0.1): sgd mu0.9 " << sgd9 << ", sgd mu0.99 " << sgd99 << ", sgdp mu0.9 "
            << sgdp9 << ", sgdp mu0.99 " << sgdp99 << "\n";
  EXPECT_GT(sgd9, 1.2);
  EXPECT_GT(sgd99, sgd9);  // more momentum, more growth
  // SGDP's steps are tangent, so ‖w‖ only grows at second order (lr²‖u‖²).
  EXPECT_LT(sgdp9, sgd9);
  EXPECT_LT(sgdp99, sgd99);
  EXPECT_GT(cos_sgdp9, 0.99);
}

TEST(ProjectedOptimizerFactoryTest, BuildsAdamPAndSgdpFromSpec) {
  at::Tensor w = RandD({2, 2});
  pendulum::v1::OptimizerSpec spec;
  spec.set_type("sgdp");
  spec.set_lr(0.1);
  spec.set_momentum(0.9);
  spec.set_nesterov(true);
  spec.set_weight_decay(1e-5);
  auto sgdp = MakeProjectedOptimizer(spec, {torch::optim::OptimizerParamGroup({w})});
  ASSERT_TRUE(sgdp.ok()) << sgdp.status();
  auto* s = dynamic_cast<SGDP*>(sgdp->get());
  ASSERT_NE(s, nullptr);
  const auto& so = static_cast<const SGDPOptions&>(s->param_groups()[0].options());
  EXPECT_DOUBLE_EQ(so.momentum(), 0.9);
  EXPECT_TRUE(so.nesterov());
  EXPECT_DOUBLE_EQ(so.delta(), 0.1);
  EXPECT_DOUBLE_EQ(so.wd_ratio(), 0.1);

  spec.set_type("adamp");
  spec.set_lr(1e-3);
  spec.set_beta2(0.99);
  spec.set_wd_ratio(0.5);
  auto adamp = MakeProjectedOptimizer(spec, {torch::optim::OptimizerParamGroup({w})});
  ASSERT_TRUE(adamp.ok()) << adamp.status();
  auto* a = dynamic_cast<AdamP*>(adamp->get());
  ASSERT_NE(a, nullptr);
  const auto& ao = static_cast<const AdamPOptions&>(a->param_groups()[0].options());
  EXPECT_DOUBLE_EQ(std::get<1>(ao.betas()), 0.99);
  EXPECT_DOUBLE_EQ(ao.wd_ratio(), 0.5);
  EXPECT_NE(dynamic_cast<ProjectionStatsSource*>(adamp->get()), nullptr);
}

TEST(ProjectedOptimizerFactoryTest, BadSpecNamesEveryBadField) {
  at::Tensor w = RandD({2, 2});
  pendulum::v1::OptimizerSpec spec;
  spec.set_type("sgdp");
  spec.set_lr(-0.1);
  spec.set_delta(1.5);
  auto r = MakeProjectedOptimizer(spec, {torch::optim::OptimizerParamGroup({w})});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("spec.optimizer.lr"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("spec.optimizer.delta"), std::string::npos) << r.status();

  spec.set_type("rmsprop");
  spec.set_lr(0.1);
  spec.clear_delta();
  auto t = MakeProjectedOptimizer(spec, {torch::optim::OptimizerParamGroup({w})});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("spec.optimizer.type"), std::string::npos) << t.status();
}

}  // namespace
}  // namespace pendulum::train::optim
