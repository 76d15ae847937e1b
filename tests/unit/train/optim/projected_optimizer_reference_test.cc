// Replays every case of adamp.json and sgdp.json (clovaai/AdamP, run by the
// reference script) through our AdamP/SGDP: same initial params, the stored
// gradient at each step, then params compared to 1e-6 in float64. Cases are
// dispatched on their "optimizer" field; an unknown one fails loudly.

#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>

#include "gtest/gtest.h"
#include "tests/unit/train/optim/reference_tensor.h"
#include "worker/train/optim/adamp.h"
#include "worker/train/optim/sgdp.h"

namespace pendulum::train::optim {
namespace {

using pendulum::testing::LoadReferenceFile;
using pendulum::testing::MaxAbsDiff;
using pendulum::testing::ordered_json;
using pendulum::testing::ReferenceTensor;

constexpr double kTol = 1e-6;

std::unique_ptr<ProjectedOptimizer> MakeFromCase(const ordered_json& c, std::vector<at::Tensor> params) {
  const std::string type = c.at("optimizer").get<std::string>();
  const ordered_json& h = c.at("hyperparameters");
  if (type == "AdamP") {
    AdamPOptions o(h.value("lr", 1e-3));
    if (h.contains("betas")) {
      o.betas(std::make_tuple(h.at("betas").at(0).get<double>(), h.at("betas").at(1).get<double>()));
    }
    o.eps(h.value("eps", 1e-8));
    o.weight_decay(h.value("weight_decay", 0.0));
    o.delta(h.value("delta", 0.1));
    o.wd_ratio(h.value("wd_ratio", 0.1));
    o.nesterov(h.value("nesterov", false));
    return std::make_unique<AdamP>(std::move(params), o);
  }
  if (type == "SGDP") {
    SGDPOptions o(h.at("lr").get<double>());
    o.momentum(h.value("momentum", 0.0));
    o.dampening(h.value("dampening", 0.0));
    o.eps(h.value("eps", 1e-8));
    o.weight_decay(h.value("weight_decay", 0.0));
    o.delta(h.value("delta", 0.1));
    o.wd_ratio(h.value("wd_ratio", 0.1));
    o.nesterov(h.value("nesterov", false));
    return std::make_unique<SGDP>(std::move(params), o);
  }
  ADD_FAILURE() << "case " << c.value("name", "?") << ": unknown optimizer '" << type
                << "' (known: AdamP, SGDP)";
  return nullptr;
}

// "channel" / "layer" / "none" / "not attempted (1-D parameter)".
std::string ExpectedViewName(const std::string& diag) {
  if (diag.rfind("not attempted", 0) == 0) return "not_tested";
  return diag;
}

void ReplayCase(const ordered_json& c) {
  const std::string name = c.value("name", "?");
  SCOPED_TRACE("case " + name);
  std::vector<std::string> names;
  std::vector<at::Tensor> params;
  for (const auto& [pname, tensor] : c.at("initial_params").items()) {
    names.push_back(pname);
    params.push_back(ReferenceTensor(tensor));
  }
  auto opt = MakeFromCase(c, params);
  ASSERT_NE(opt, nullptr);
  const auto& steps = c.at("steps");
  ASSERT_EQ(static_cast<int64_t>(steps.size()), c.value("num_steps", static_cast<int64_t>(steps.size())));
  for (const auto& s : steps) {
    const int step = s.at("step").get<int>();
    SCOPED_TRACE("step " + std::to_string(step));
    for (size_t i = 0; i < names.size(); ++i) {
      params[i].mutable_grad() = ReferenceTensor(s.at("grads").at(names[i]));
    }
    opt->step();
    for (size_t i = 0; i < names.size(); ++i) {
      const at::Tensor expected = ReferenceTensor(s.at("params_after").at(names[i]));
      ASSERT_EQ(params[i].sizes(), expected.sizes()) << names[i];
      ASSERT_EQ(params[i].scalar_type(), expected.scalar_type()) << names[i];
      EXPECT_LE(MaxAbsDiff(params[i], expected), kTol) << "param " << names[i];
    }
    // Diagnostics are not needed for the replay, but they pin down which view fired.
    if (s.contains("diagnostics")) {
      const auto& stats = opt->last_step_stats();
      ASSERT_EQ(stats.size(), names.size());
      for (size_t i = 0; i < names.size(); ++i) {
        if (!s.at("diagnostics").contains(names[i])) continue;
        const auto& d = s.at("diagnostics").at(names[i]);
        EXPECT_EQ(ProjectionViewName(stats[i].projection.view),
                  ExpectedViewName(d.at("projection").get<std::string>()))
            << names[i];
        EXPECT_DOUBLE_EQ(stats[i].projection.wd_factor, d.at("wd_ratio_used").get<double>()) << names[i];
      }
    }
  }
}

void ReplayFile(const std::string& file) {
  const ordered_json ref = LoadReferenceFile(file);
  ASSERT_TRUE(ref.contains("cases")) << file;
  ASSERT_FALSE(ref.at("cases").empty()) << file;
  for (const auto& c : ref.at("cases")) ReplayCase(c);
}

TEST(ProjectedOptimizerReferenceTest, EveryAdamPCaseMatchesClovaaiReference) { ReplayFile("adamp.json"); }

TEST(ProjectedOptimizerReferenceTest, EverySgdpCaseMatchesClovaaiReference) { ReplayFile("sgdp.json"); }

}  // namespace
}  // namespace pendulum::train::optim
