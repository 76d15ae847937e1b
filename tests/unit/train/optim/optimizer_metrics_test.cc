// AdamP/SGDP as the trainer sees them: built through the OptimizerRegistry
// ("sgdp", "adamp") they report the §3.5 scalars through OptimizerMetrics,
// named after the model's parameters and prefixed with the optimizer type;
// detailed stats (‖w‖, effective step, angle) only for a prepared step.

#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "gtest/gtest.h"
#include "worker/train/core/optimizer_registry.h"

namespace pendulum::train {
namespace {

TEST(OptimizerMetricsTest, RegisteredSgdpReportsNamedProjectionScalars) {
  for (const std::string type : {"sgdp", "adamp"}) {
    SCOPED_TRACE(type);
    const OptimizerFactory* factory = OptimizerRegistry::Global().Find(type);
    ASSERT_NE(factory, nullptr);
    v1::OptimizerSpec spec;
    spec.set_type(type);
    spec.set_lr(0.1);
    if (type == "sgdp") spec.set_momentum(0.9);
    at::manual_seed(3);
    ParamGroups params;
    at::Tensor conv = at::randn({4, 3, 3, 3}).set_requires_grad(true);
    at::Tensor bias = at::randn({4}).set_requires_grad(true);
    params.decay = {conv};
    params.decay_names = {"conv1.weight"};
    params.no_decay = {bias};
    params.no_decay_names = {"conv1.bias"};
    auto opt = (*factory)(spec, params);
    ASSERT_TRUE(opt.ok()) << opt.status();
    auto* metrics = dynamic_cast<OptimizerMetrics*>(opt->get());
    ASSERT_NE(metrics, nullptr);

    // A gradient orthogonal to every channel of w (as behind BN): projected.
    auto orthogonal_grad = [&] {
      at::Tensor g = at::randn_like(conv);
      at::Tensor w = conv.detach().reshape({4, -1});
      at::Tensor g2 = g.reshape({4, -1});
      g2 = g2 - w * ((g2 * w).sum(1, true) / (w * w).sum(1, true));
      conv.mutable_grad() = g2.reshape(conv.sizes()).contiguous();
      bias.mutable_grad() = at::randn_like(bias);
    };
    orthogonal_grad();
    (*opt)->step();  // not prepared: no detailed stats
    std::map<std::string, double> v;
    metrics->AppendMetricScalars(&v);
    EXPECT_EQ(v.at(type + "/conv1.weight/view"), 1.0);  // channel view fired
    EXPECT_EQ(v.count(type + "/conv1.weight/norm"), 0u);
    EXPECT_EQ(v.count(type + "/conv1.bias/view"), 0u);  // 1-D: never tested
    // 108 of 112 elements were projected since the last report.
    EXPECT_NEAR(v.at(type + "/fraction_projected"), 108.0 / 112.0, 1e-12);

    metrics->PrepareMetricStep();
    orthogonal_grad();
    (*opt)->step();
    v.clear();
    metrics->AppendMetricScalars(&v);
    ASSERT_EQ(v.count(type + "/conv1.weight/norm"), 1u);
    EXPECT_NEAR(v.at(type + "/conv1.weight/norm"), conv.detach().norm().item<double>(), 1e-5);
    EXPECT_GT(v.at(type + "/conv1.weight/effective_step"), 0.0);
    EXPECT_GT(v.at(type + "/conv1.weight/angle"), 0.0);
    EXPECT_NEAR(v.at(type + "/fraction_projected"), 108.0 / 112.0, 1e-12);  // counters were reset
  }
}

}  // namespace
}  // namespace pendulum::train
