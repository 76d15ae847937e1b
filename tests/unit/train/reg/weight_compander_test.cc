// Unit checks of methods.md §7.4: f is odd and monotone, f(f⁻¹(w)) = w, and the
// autograd gradient of the reparameterised weight matches finite differences.
#include "worker/train/reg/weight_compander.h"

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/activation.h>
#include <torch/utils.h>

#include "gtest/gtest.h"

namespace pendulum::train::reg {
namespace {

at::Tensor D(double x) { return at::full({}, x, at::kDouble); }

struct FamilyCase {
  CompanderFamily family;
  double a, beta;
};

class CompanderFunctionTest : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(CompanderFunctionTest, OddMonotoneInvertible) {
  const FamilyCase c = GetParam();
  CompanderFunction fn;
  fn.family = c.family;
  at::Tensor v = at::linspace(-3 * c.a, 3 * c.a, 2001, at::kDouble);
  at::Tensor w = fn.Forward(v, D(c.a), D(c.beta));
  // Odd.
  EXPECT_LT((fn.Forward(-v, D(c.a), D(c.beta)) + w).abs().max().item<double>(), 1e-12);
  // Strictly monotone increasing.
  EXPECT_GT((w.slice(0, 1) - w.slice(0, 0, -1)).min().item<double>(), 0.0);
  // Expansion of small weights: slope > 1 at 0 (§4.1).
  EXPECT_GT(fn.Derivative(D(0.0), D(c.a), D(c.beta)).item<double>(), 1.0);
  // f(f⁻¹(w)) = w on the range (tanh: |w| < 0.999 A).
  at::Tensor target = at::linspace(-0.99 * c.a, 0.99 * c.a, 501, at::kDouble);
  at::Tensor round = fn.Forward(fn.Inverse(target, D(c.a), D(c.beta)), D(c.a), D(c.beta));
  EXPECT_LT((round - target).abs().max().item<double>(), 1e-9);
}

TEST_P(CompanderFunctionTest, GradientMatchesFiniteDifferences) {
  const FamilyCase c = GetParam();
  CompanderFunction fn;
  fn.family = c.family;
  at::Tensor v = at::linspace(-2 * c.a, 2 * c.a, 41, at::kDouble).set_requires_grad(true);
  at::Tensor a = D(c.a).set_requires_grad(true), b = D(c.beta).set_requires_grad(true);
  at::Tensor y = (fn.Forward(v, a, b) * at::arange(1, 42, at::kDouble)).sum();
  y.backward();
  const double h = 1e-6;
  auto value = [&](const at::Tensor& vv, double aa, double bb) {
    return (fn.Forward(vv, D(aa), D(bb)) * at::arange(1, 42, at::kDouble)).sum().item<double>();
  };
  at::Tensor vd = v.detach();
  for (int64_t i = 0; i < 41; i += 5) {
    if (std::abs(vd[i].item<double>()) < 1e-9) continue;  // |v| kink of sign() in mu_law/power
    at::Tensor vp = vd.clone(), vm = vd.clone();
    vp[i] += h;
    vm[i] -= h;
    const double fd = (value(vp, c.a, c.beta) - value(vm, c.a, c.beta)) / (2 * h);
    EXPECT_NEAR(v.grad()[i].item<double>(), fd, 1e-5 * std::max(1.0, std::abs(fd))) << "i=" << i;
  }
  const double fd_a = (value(vd, c.a + h, c.beta) - value(vd, c.a - h, c.beta)) / (2 * h);
  const double fd_b = (value(vd, c.a, c.beta + h) - value(vd, c.a, c.beta - h)) / (2 * h);
  EXPECT_NEAR(a.grad().item<double>(), fd_a, 1e-5 * std::max(1.0, std::abs(fd_a)));
  EXPECT_NEAR(b.grad().item<double>(), fd_b, 1e-5 * std::max(1.0, std::abs(fd_b)));
  // Analytic derivative agrees with autograd.
  at::Tensor v2 = vd.clone().set_requires_grad(true);
  fn.Forward(v2, D(c.a), D(c.beta)).sum().backward();
  EXPECT_LT((v2.grad() - fn.Derivative(vd, D(c.a), D(c.beta))).abs().max().item<double>(), 1e-9);
}

INSTANTIATE_TEST_SUITE_P(Families, CompanderFunctionTest,
                         ::testing::Values(FamilyCase{CompanderFamily::kTanh, 0.3, 2.0},
                                           FamilyCase{CompanderFamily::kMuLaw, 0.5, 5.0},
                                           FamilyCase{CompanderFamily::kPower, 0.4, 0.5}));

torch::nn::Sequential SmallNet() {
  return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 3, 3)),
                               torch::nn::ReLU(), torch::nn::Flatten(),
                               torch::nn::Linear(3 * 4 * 4, 5));
}

TEST(WeightCompanderTest, InitKeepsEffectiveWeightsAndExportWritesThem) {
  torch::manual_seed(0);
  auto net = SmallNet();
  net->to(at::kDouble);
  std::vector<at::Tensor> w_init;
  for (const auto& p : net->named_parameters()) {
    if (p.key().find("weight") != std::string::npos) w_init.push_back(p.value().detach().clone());
  }
  at::Tensor x = at::randn({2, 1, 6, 6}, at::kDouble);
  at::Tensor y_before = net->forward(x).detach();
  auto wc = WeightCompander::Attach(*net, WeightCompanderOptions{});
  ASSERT_TRUE(wc.ok()) << wc.status();
  ASSERT_EQ((*wc)->layers().size(), 2u);
  // Registered params now hold v ≠ w, but the effective weights equal w_init
  // (nothing was beyond 0.999·A = 2.997σ for these small layers... up to clamping).
  EXPECT_GT(((*wc)->layers()[1].latent_weight() - w_init[1]).abs().max().item<double>(), 1e-4);
  at::Tensor y_after = net->forward(x).detach();
  EXPECT_LT((y_after - y_before).abs().max().item<double>(), 1e-2);
  for (const auto& s : (*wc)->Stats()) {
    EXPECT_LE(s.max_abs_w, s.a + 1e-12) << s.layer;  // tanh bounds |w| by A
    EXPECT_GT(s.std_w, 0);
  }
  (*wc)->Export();
  at::Tensor y_export = net->forward(x).detach();
  EXPECT_LT((y_export - y_after).abs().max().item<double>(), 1e-12);
}

TEST(WeightCompanderTest, LearnableHyperParametersGetGradients) {
  torch::manual_seed(1);
  auto net = SmallNet();
  WeightCompanderOptions opt;
  opt.learnable = true;
  auto wc = WeightCompander::Attach(*net, opt);
  ASSERT_TRUE(wc.ok());
  auto hp = (*wc)->hyper_parameters();
  ASSERT_EQ(hp.size(), 4u);
  (*wc)->Materialize();
  net->forward(at::randn({2, 1, 6, 6})).pow(2).sum().backward();
  for (const auto& t : hp) {
    ASSERT_TRUE(t.grad().defined());
    EXPECT_TRUE(std::isfinite(t.grad().item<double>()));
  }
  // The latent weights (registered parameters) receive dL/dv = dL/dw · f'(v).
  EXPECT_TRUE((*wc)->layers()[0].latent_weight().grad().defined());
}

TEST(WeightCompanderTest, RejectsBadOptions) {
  auto net = SmallNet();
  WeightCompanderOptions opt;
  opt.family = CompanderFamily::kPower;
  opt.beta = 2.0;
  auto wc = WeightCompander::Attach(*net, opt);
  ASSERT_FALSE(wc.ok());
  EXPECT_NE(std::string(wc.status().message()).find("0 < p < 1"), std::string::npos);
  EXPECT_FALSE(ParseCompanderFamily("sigmoid").ok());
}

}  // namespace
}  // namespace pendulum::train::reg
