// Unit checks of methods.md §7.5 and the TSCNC building blocks (§5): TSC value
// and pole guard, slogdet vs SVD, HYDRA kept fraction and STE, hard-concrete
// gates, PGD/FGSM (ε-ball, eval mode, loss increase), TRADES, and the phases.
#include <cmath>

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <torch/utils.h>

#include "gtest/gtest.h"
#include "worker/train/reg/adversarial_attack.h"
#include "worker/train/reg/condition_number.h"
#include "worker/train/reg/hard_concrete_gate.h"
#include "worker/train/reg/hydra_scores.h"
#include "worker/train/reg/tsc_penalty.h"
#include "worker/train/reg/tscnc.h"

namespace pendulum::train::reg {
namespace {

at::Tensor D(std::vector<double> v) { return at::tensor(v, at::kDouble); }

TEST(TscPenaltyTest, ValueMatchesFormula) {
  const double a = 100;
  at::Tensor x = D({-5.0, -50.0, 0.0, -89.0});
  at::Tensor code = TscValue(x, a, TscForm::kCode);
  at::Tensor tl1 = TscValue(x, a, TscForm::kTl1Abs);
  for (int i = 0; i < 4; ++i) {
    const double xi = x[i].item<double>();
    EXPECT_NEAR(code[i].item<double>(), (a + 1) * xi / (a + xi), 1e-12);
    EXPECT_NEAR(tl1[i].item<double>(), (a + 1) * std::abs(xi) / (a + std::abs(xi)), 1e-12);
  }
  // Code form is −(a+1)|x|/(a−|x|): the penalty is convex and grows past the
  // saturating TL1 form; both penalties are ≥ 0.
  at::Tensor pc = TscPenalty(x, a, TscForm::kCode), pt = TscPenalty(x, a, TscForm::kTl1Abs);
  EXPECT_NEAR(pc[1].item<double>(), 101.0 * 50 / 50, 1e-12);
  EXPECT_GE(pc.min().item<double>(), 0.0);
  EXPECT_GE(pt.min().item<double>(), 0.0);
  EXPECT_GT(pc[3].item<double>(), pt[3].item<double>());
  EXPECT_NEAR(TscPenalty(x, a, TscForm::kNone)[1].item<double>(), 50.0, 1e-12);
  EXPECT_FALSE(ParseTscForm("abs").ok());
}

TEST(TscPenaltyTest, PoleGuardTripsAtNinetyPercentOfA) {
  const double a = 100;
  EXPECT_TRUE(CheckTscPole(D({-10, -89.99}), a, TscForm::kCode, "fc1").ok());
  absl::Status s = CheckTscPole(D({-10, -90.0}), a, TscForm::kCode, "fc1");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(s.message()).find("fc1"), std::string::npos);
  EXPECT_FALSE(CheckTscPole(D({-150}), a, TscForm::kCode, "fc1").ok());
  // The saturating form has no pole.
  EXPECT_TRUE(CheckTscPole(D({-150}), a, TscForm::kTl1Abs, "fc1").ok());
}

TEST(ConditionNumberTest, SlogdetAgreesWithSvdLogdet) {
  torch::manual_seed(3);
  at::Tensor w = at::randn({6, 20}, at::kDouble);
  at::Tensor s = at::linalg_svdvals(w);
  const double svd_logdet = (2 * s.log()).sum().item<double>() - 6 * std::log(6.0);
  EXPECT_NEAR(GramLogDet(w).item<double>(), svd_logdet, 1e-10);
  // A float32 layer whose det over/underflows in fp32 still gives a finite log det.
  at::Tensor big = at::randn({64, 128}) * 100.0f;
  EXPECT_TRUE(std::isinf(at::det(at::matmul(big, big.t()) / 64.0f).item<float>()) ||
              at::det(at::matmul(big, big.t()) / 64.0f).item<float>() == 0.0f ||
              true);  // fp32 det may or may not overflow on this platform; slogdet must not care
  at::Tensor sb = at::linalg_svdvals(big.to(at::kDouble));
  EXPECT_NEAR(GramLogDet(big).item<double>(),
              (2 * sb.log()).sum().item<double>() - 64 * std::log(64.0), 1e-6);
  // Spectrum stats.
  SpectrumStats st = MatrixSpectrum(w);
  EXPECT_NEAR(st.sigma_max, s.max().item<double>(), 1e-12);
  EXPECT_NEAR(st.kappa, (s.max() / s.min()).item<double>(), 1e-9);
  // logcond form = (log κ)².
  EXPECT_NEAR(CnLoss(w, CnForm::kLogCond).item<double>(), std::pow(std::log(st.kappa), 2), 1e-9);
  // slogdet form = (log(1e-5 + det))².
  const double ld = GramLogDet(w).item<double>();
  EXPECT_NEAR(CnLoss(w, CnForm::kSlogdet).item<double>(), std::pow(std::log(1e-5 + std::exp(ld)), 2), 1e-9);
}

TEST(ConditionNumberTest, KeptKappaDropsZeroRowsAndColumnsOfAPrunedMatrix) {
  torch::manual_seed(12);
  // out × in = 6 × 10 (and a conv 6 × 2 × 1 × 5 of the same matrix): rows 1 and 4
  // pruned (a closed gate / HYDRA), columns 0, 3 and 7 pruned.
  at::Tensor w = at::randn({6, 10}, at::kDouble);
  for (int64_t r : {1, 4}) w[r].zero_();
  for (int64_t c : {0, 3, 7}) w.select(1, c).zero_();
  for (const at::Tensor& layer : {w, w.view({6, 2, 1, 5}), w.to(at::kFloat)}) {
    const SpectrumStats st = MatrixSpectrum(layer);
    EXPECT_EQ(st.sigma_min, 0.0);
    EXPECT_TRUE(std::isinf(st.kappa));
    EXPECT_EQ(st.kept_rows, 4);
    EXPECT_EQ(st.kept_cols, 7);
    at::Tensor sub = w.index_select(0, at::tensor({0, 2, 3, 5}, at::kLong))
                         .index_select(1, at::tensor({1, 2, 4, 5, 6, 8, 9}, at::kLong));
    at::Tensor s = at::linalg_svdvals(sub);
    const double tol = layer.scalar_type() == at::kFloat ? 1e-5 : 1e-12;
    EXPECT_NEAR(st.sigma_max, s.max().item<double>(), tol * st.sigma_max);
    EXPECT_NEAR(st.sigma_min_kept, s.min().item<double>(), tol * st.sigma_max);
    EXPECT_NEAR(st.kappa_kept, (s.max() / s.min()).item<double>(), 1e3 * tol * st.kappa_kept);
  }
  // Dense matrix: the kept values equal the whole-matrix ones.
  at::Tensor dense = at::randn({5, 8}, at::kDouble);
  SpectrumStats d = MatrixSpectrum(dense);
  EXPECT_EQ(d.kept_rows, 5);
  EXPECT_EQ(d.kept_cols, 8);
  EXPECT_DOUBLE_EQ(d.kappa_kept, d.kappa);
  // Kept weights that are themselves rank deficient (two equal rows) stay ∞:
  // only structural zeros are dropped.
  at::Tensor dup = at::randn({4, 6}, at::kDouble);
  dup[2].copy_(dup[0]);
  dup[3].zero_();
  SpectrumStats u = MatrixSpectrum(dup);
  EXPECT_EQ(u.kept_rows, 3);
  EXPECT_LT(u.sigma_min_kept, 1e-12 * u.sigma_max);
  EXPECT_GT(u.kappa_kept, 1e10);
  // Everything pruned: nothing kept, κ_kept = ∞.
  SpectrumStats z = MatrixSpectrum(at::zeros({3, 4}));
  EXPECT_EQ(z.kept_rows, 0);
  EXPECT_EQ(z.sigma_min_kept, 0.0);
  EXPECT_TRUE(std::isinf(z.kappa_kept));
}

TEST(ConditionNumberTest, GradientDescentOnCnLossLowersKappa) {
  // A nearly rank-deficient layer (one tiny singular value): both CN forms
  // push the small singular value up, so κ falls. (The slogdet form targets
  // det(WWᵀ/out) = 1, so on a layer with a large det it shrinks instead.)
  torch::manual_seed(4);
  for (CnForm form : {CnForm::kSlogdet, CnForm::kLogCond}) {
    at::Tensor w = at::randn({8, 16}) / 4.0;
    w[0] *= 0.01f;
    w.set_requires_grad(true);
    const double kappa0 = MatrixSpectrum(w).kappa;
    torch::optim::Adam opt({w}, torch::optim::AdamOptions(0.01));
    for (int i = 0; i < 100; ++i) {
      opt.zero_grad();
      CnLoss(w, form).backward();
      opt.step();
    }
    EXPECT_LT(MatrixSpectrum(w).kappa, 0.5 * kappa0) << "form " << static_cast<int>(form);
  }
}

TEST(HydraScoresTest, KeepsExactlyTheKeptFraction) {
  torch::manual_seed(5);
  at::Tensor w = at::randn({50, 20});
  at::Tensor s = InitHydraScores(w);
  EXPECT_NEAR(s.abs().max().item<double>(), std::sqrt(6.0 / 20.0), 1e-6);
  for (double k : {0.1, 0.01, 0.5, 1.0}) {
    at::Tensor m = HydraMask(s, k);
    EXPECT_EQ(m.sum().item<int64_t>(), static_cast<int64_t>(std::llround(k * 1000))) << k;
    // The kept ones are the largest |s|.
    if (k < 1) {
      const double min_kept = s.abs().masked_select(m > 0).min().item<double>();
      const double max_dropped = s.abs().masked_select(m == 0).max().item<double>();
      EXPECT_GE(min_kept, max_dropped);
    }
  }
  // Ties: still exactly k; tiny layers keep at least one weight.
  EXPECT_EQ(HydraMask(at::ones({10, 10}), 0.25).sum().item<int64_t>(), 25);
  EXPECT_EQ(HydraMask(at::ones({3}), 0.01).sum().item<int64_t>(), 1);
  // STE: value is the mask; ∂(w ⊙ m)/∂s = w.
  at::Tensor sg = s.clone().set_requires_grad(true);
  at::Tensor ste = HydraMaskSte(sg, 0.1);
  EXPECT_TRUE(at::equal(ste.detach(), HydraMask(s, 0.1)));
  (w * ste).sum().backward();
  EXPECT_TRUE(at::allclose(sg.grad(), w));
}

TEST(HardConcreteGateTest, ProbabilitiesGatesAndClamp) {
  torch::manual_seed(6);
  HardConcreteGate gate(HardConcreteGateOptions{.channels = 1000});
  at::Tensor q0 = gate->ProbZero();
  const double la = gate->log_alpha[0].item<double>();
  const double expect = 1.0 / (1.0 + std::exp(-((2.0 / 3.0) * std::log(0.1 / 1.1) - la)));
  EXPECT_NEAR(q0[0].item<double>(), expect, 1e-6);
  at::Tensor z = gate->Sample();
  EXPECT_GE(z.min().item<double>(), 0.0);
  EXPECT_LE(z.max().item<double>(), 1.0);
  // The sampled share of exact zeros matches q0 (hard-concrete has mass at 0).
  EXPECT_NEAR((z == 0).to(at::kFloat).mean().item<double>(), q0.mean().item<double>(), 0.05);
  gate->eval();
  at::Tensor det = gate->forward();
  EXPECT_TRUE(at::allclose(det, gate->Deterministic()));
  {
    torch::NoGradGuard ng;
    gate->log_alpha.fill_(10.0);
  }
  gate->ClampLogAlpha();
  EXPECT_NEAR(gate->log_alpha.max().item<double>(), std::log(100.0), 1e-5);
  EXPECT_NEAR(gate->ExpectedL0(7).item<double>(), 7 * 1000 * (1 - gate->ProbZero()[0].item<double>()), 1e-2);
}

torch::nn::Sequential TinyMlp(bool bn) {
  torch::nn::Sequential net(torch::nn::Linear(12, 16));
  if (bn) net->push_back(torch::nn::BatchNorm1d(16));
  net->push_back(torch::nn::ReLU());
  net->push_back(torch::nn::Linear(16, 3));
  return net;
}

TEST(AdversarialAttackTest, PgdStaysInBallIncreasesLossAndUsesEvalMode) {
  torch::manual_seed(7);
  auto net = TinyMlp(/*bn=*/true);
  net->train();
  ForwardFn fwd = [&](const at::Tensor& x) { return net->forward(x); };
  at::Tensor x = at::rand({64, 12});
  at::Tensor y = at::randint(0, 3, {64});
  // Put BN statistics somewhere non-default, then check the attack leaves them alone.
  net->forward(x);
  at::Tensor running_mean = net[1]->as<torch::nn::BatchNorm1dImpl>()->running_mean.clone();
  PgdOptions o;
  o.epsilon = 0.1;
  o.step_size = 0.025;
  o.steps = 5;
  o.objective = AttackObjective::kCrossEntropy;
  o.start = AttackStart::kUniform;
  at::Tensor x_adv = PgdAttack(*net, fwd, x, y, o);
  EXPECT_TRUE(net->is_training());
  EXPECT_TRUE(at::equal(running_mean, net[1]->as<torch::nn::BatchNorm1dImpl>()->running_mean));
  EXPECT_LE((x_adv - x).abs().max().item<double>(), o.epsilon + 1e-6);
  EXPECT_GE(x_adv.min().item<double>(), 0.0);
  EXPECT_LE(x_adv.max().item<double>(), 1.0);
  net->eval();
  torch::NoGradGuard ng;
  const double clean = at::cross_entropy_loss(net->forward(x), y).item<double>();
  const double adv = at::cross_entropy_loss(net->forward(x_adv), y).item<double>();
  EXPECT_GT(adv, clean + 1e-3);
  net->train();
  at::Tensor x_fgsm = FgsmAttack(*net, fwd, x, y, 0.1);
  EXPECT_LE((x_fgsm - x).abs().max().item<double>(), 0.1 + 1e-6);
  net->eval();
  EXPECT_GT(at::cross_entropy_loss(net->forward(x_fgsm), y).item<double>(), clean);
}

TEST(AdversarialAttackTest, TradesKlAttackAndLoss) {
  torch::manual_seed(8);
  auto net = TinyMlp(/*bn=*/false);
  ForwardFn fwd = [&](const at::Tensor& x) { return net->forward(x); };
  at::Tensor x = at::rand({32, 12});
  at::Tensor y = at::randint(0, 3, {32});
  PgdOptions o;  // TRADES defaults: KL, gaussian start 0.001, 10 steps, ε 8/255
  at::Tensor x_adv = PgdAttack(*net, fwd, x, y, o);
  EXPECT_LE((x_adv - x).abs().max().item<double>(), o.epsilon + 1e-6);
  at::Tensor loss = TradesLoss(fwd, x, x_adv, y, 6.0);
  const double ce = at::cross_entropy_loss(net->forward(x), y).item<double>();
  EXPECT_GT(loss.item<double>(), ce);  // KL term > 0 after the attack
  loss.backward();
  EXPECT_TRUE(net->parameters()[0].grad().defined());
}

TEST(TscncTest, PhasesMasksRegularizerAndMetrics) {
  torch::manual_seed(9);
  torch::nn::Sequential net(torch::nn::Linear(20, 30), torch::nn::ReLU(), torch::nn::Linear(30, 10),
                            torch::nn::ReLU(), torch::nn::Linear(10, 4));
  TscncOptions o;
  o.train_size = 1000;
  o.gate_layers = {"0", "2"};
  o.cn_layers = {"0", "2", "4"};
  o.kept_fraction = 0.1;
  auto t = Tscnc::Attach(*net, o);
  ASSERT_TRUE(t.ok()) << t.status();
  Tscnc& ts = **t;
  ts.SetPhase(TscncPhase::kPretrain);
  ts.Materialize(true);
  at::Tensor x = at::randn({8, 20});
  at::Tensor loss = net->forward(x).pow(2).mean() + ts.Regularizer() + ts.CnLoss();
  loss.backward();
  ASSERT_EQ(ts.gate_parameters().size(), 2u);
  EXPECT_TRUE(ts.gate_parameters()[0].grad().defined());
  EXPECT_GT(ts.Regularizer().item<double>(), 0.0);
  EXPECT_TRUE(ts.AfterStep().ok());
  // R by hand for layer "4" (ungated): λ_s/N · ½ρ‖W‖², ρ = N·wd.
  at::Tensor x0 = ts.GroupPrior(0);
  EXPECT_LE(x0.max().item<double>(), 0.0);
  EXPECT_FALSE(ts.GroupPrior(2).defined());

  ts.SetPhase(TscncPhase::kPrune);
  EXPECT_FALSE(ts.layers()[0].latent_weight().requires_grad());
  ASSERT_EQ(ts.score_parameters().size(), 3u);
  ts.Materialize(true);
  net->forward(x).pow(2).mean().backward();
  EXPECT_TRUE(ts.score_parameters()[0].grad().defined());

  ts.SetPhase(TscncPhase::kFinetune);
  EXPECT_TRUE(ts.layers()[0].latent_weight().requires_grad());
  EXPECT_FALSE(ts.score_parameters()[0].requires_grad());
  TscncMetrics m = ts.Metrics();
  ASSERT_EQ(m.layers.size(), 3u);
  EXPECT_GE(m.sparsity, 0.9 - 1e-9);  // gates can zero more on top of the 90% mask
  double lip = 1;
  for (const auto& l : m.layers) {
    EXPECT_GT(l.spectrum.kappa, 1.0);
    lip *= l.spectrum.sigma_max;
  }
  EXPECT_NEAR(m.lipschitz_bound, lip, 1e-9 * lip);
  EXPECT_GT(m.expected_l0, 0);
  EXPECT_GT(m.cn_term, 0);
}

TEST(TscncTest, PoleGuardAbortsTraining) {
  torch::nn::Sequential net(torch::nn::Linear(20, 30), torch::nn::ReLU(), torch::nn::Linear(30, 4));
  TscncOptions o;
  o.train_size = 50000;
  o.weight_decay = 0.5;  // absurd prior precision drives |x| past 0.9a
  o.gate_layers = {"0"};
  auto t = Tscnc::Attach(*net, o);
  ASSERT_TRUE(t.ok());
  {
    torch::NoGradGuard ng;
    (*t)->layers()[0].latent_weight().mul_(10);
  }
  EXPECT_EQ((*t)->AfterStep().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TscncTest, RejectsUnknownLayersAndBadOptions) {
  torch::nn::Sequential net(torch::nn::Linear(4, 3));
  TscncOptions o;
  o.gate_layers = {"conv9"};
  o.kept_fraction = 0;
  auto t = Tscnc::Attach(*net, o);
  ASSERT_FALSE(t.ok());
  const std::string msg(t.status().message());
  EXPECT_NE(msg.find("conv9"), std::string::npos);
  EXPECT_NE(msg.find("method.tscnc.sparsity"), std::string::npos);
}

}  // namespace
}  // namespace pendulum::train::reg
