// Reproduces every case of wa.json and kd.json (PyCIL, run by the reference
// script) to 1e-6 in float64, dispatching on each case's "kind":
// weight_align (IncrementalNet.weight_align), kd_loss (_KD_loss, value and
// gradient) and wa_objective (the per-batch loss of WA._update_representation).
// An unknown kind fails loudly.

#include <string>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "gtest/gtest.h"
#include "tests/unit/train/optim/reference_tensor.h"
#include "worker/train/incremental/kd_loss.h"
#include "worker/train/incremental/weight_aligner.h"

namespace pendulum::train::incremental {
namespace {

using pendulum::testing::LoadReferenceFile;
using pendulum::testing::MaxAbsDiff;
using pendulum::testing::ordered_json;
using pendulum::testing::ReferenceTensor;

constexpr double kTol = 1e-6;

void ExpectClose(const at::Tensor& actual, const ordered_json& expected, const std::string& what) {
  at::Tensor e = ReferenceTensor(expected);
  ASSERT_EQ(actual.sizes(), e.sizes()) << what;
  EXPECT_LE(MaxAbsDiff(actual, e), kTol) << what;
}

void RunWeightAlign(const ordered_json& c) {
  const auto& p = c.at("params");
  at::Tensor w = ReferenceTensor(c.at("inputs").at("fc_weight"));
  ASSERT_EQ(w.size(0), p.value("total_classes", w.size(0)));
  // PyCIL's weight_align takes the increment; either field gives C_o.
  const int64_t known = p.contains("known_classes") ? p.at("known_classes").get<int64_t>()
                                                    : w.size(0) - p.at("increment").get<int64_t>();
  if (p.contains("increment")) {
    ASSERT_EQ(w.size(0) - known, p.at("increment").get<int64_t>());
  }
  at::Tensor bias;
  if (c.at("inputs").contains("fc_bias")) bias = ReferenceTensor(c.at("inputs").at("fc_bias"));
  const at::Tensor bias_before = bias.defined() ? bias.clone() : bias;
  WeightAlignOptions options;
  options.norm = p.value("norm", 2);
  options.clamp_gamma_le_1 = p.value("clamp_gamma_le_1", false);
  WeightAlignResult r = AlignWeights(w, known, options);
  const auto& e = c.at("expected");
  EXPECT_NEAR(r.gamma, ReferenceTensor(e.at("gamma")).item<double>(), kTol);
  ExpectClose(w, e.at("aligned_weight"), "aligned_weight");
  if (e.contains("bias_after")) {
    ASSERT_TRUE(bias.defined());
    ExpectClose(bias, e.at("bias_after"), "bias_after");
    EXPECT_TRUE(at::equal(bias, bias_before));  // never aligned (§2.5 Trap 1)
  }
}

void RunKdLoss(const ordered_json& c) {
  at::Tensor pred = ReferenceTensor(c.at("inputs").at("pred")).set_requires_grad(true);
  at::Tensor soft = ReferenceTensor(c.at("inputs").at("soft"));
  at::Tensor loss = KdLoss(pred, soft, c.at("params").at("T").get<double>());
  loss.backward();
  const auto& e = c.at("expected");
  ExpectClose(loss.detach(), e.at("loss"), "loss");
  if (e.contains("grad_pred")) ExpectClose(pred.grad(), e.at("grad_pred"), "grad_pred");
}

void RunWaObjective(const ordered_json& c) {
  const auto& p = c.at("params");
  at::Tensor logits = ReferenceTensor(c.at("inputs").at("logits")).set_requires_grad(true);
  at::Tensor old_logits = ReferenceTensor(c.at("inputs").at("old_logits"));
  at::Tensor targets = ReferenceTensor(c.at("inputs").at("targets"));
  const int64_t known = p.at("known_classes").get<int64_t>();
  ASSERT_EQ(logits.size(1), p.value("total_classes", logits.size(1)));
  IncrementalLossTerms t = IncrementalLoss(logits, old_logits, targets, known, p.value("T", 2.0), /*use_kd=*/true);
  if (p.contains("kd_lambda")) {
    EXPECT_NEAR(t.kd_lambda, p.at("kd_lambda").get<double>(), 1e-12);
  }
  t.loss.backward();
  const auto& e = c.at("expected");
  ExpectClose(t.loss_ce.detach(), e.at("loss_clf"), "loss_clf");
  ExpectClose(t.loss_kd.detach(), e.at("loss_kd"), "loss_kd");
  ExpectClose(t.loss.detach(), e.at("loss"), "loss");
  if (e.contains("grad_logits")) ExpectClose(logits.grad(), e.at("grad_logits"), "grad_logits");
}

void RunFile(const std::string& file) {
  const ordered_json ref = LoadReferenceFile(file);
  ASSERT_FALSE(ref.at("cases").empty()) << file;
  for (const auto& c : ref.at("cases")) {
    const std::string kind = c.at("kind").get<std::string>();
    SCOPED_TRACE(file + " case " + c.value("name", "?") + " kind " + kind);
    if (kind == "weight_align") {
      RunWeightAlign(c);
    } else if (kind == "kd_loss") {
      RunKdLoss(c);
    } else if (kind == "wa_objective") {
      RunWaObjective(c);
    } else {
      ADD_FAILURE() << "unknown kind '" << kind << "' (known: weight_align, kd_loss, wa_objective)";
    }
  }
}

TEST(IncrementalReferenceTest, EveryWaCaseMatchesPyCil) { RunFile("wa.json"); }

TEST(IncrementalReferenceTest, EveryKdCaseMatchesPyCil) { RunFile("kd.json"); }

}  // namespace
}  // namespace pendulum::train::incremental
