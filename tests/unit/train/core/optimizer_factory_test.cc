#include "worker/train/core/optimizer_factory.h"

#include <torch/optim/adamw.h>

#include "gtest/gtest.h"
#include "worker/train/models/mlp.h"

namespace pendulum::train {
namespace {

ModelPtr SmallMlp() {
  MlpOptions o;
  o.in_features = 4;
  o.hidden = {3};
  o.num_classes = 2;
  return std::make_shared<Mlp>(o);
}

TEST(OptimizerFactoryTest, OneDimensionalParametersSkipDecayUnlessAsked) {
  ModelPtr m = SmallMlp();
  v1::OptimizerSpec spec;
  spec.set_type("adamw");
  spec.set_lr(0.1);
  ParamGroups g = SplitParameters(spec, *m, nullptr);
  EXPECT_EQ(g.decay_names, (std::vector<std::string>{"fc0.weight", "head.weight"}));
  EXPECT_EQ(g.no_decay_names, (std::vector<std::string>{"fc0.bias", "head.bias"}));
  spec.set_decay_1d(true);
  g = SplitParameters(spec, *m, nullptr);
  EXPECT_EQ(g.decay.size(), 4u);
  EXPECT_TRUE(g.no_decay.empty());
}

// With zero gradients only weight decay moves parameters: SGD with lr 1 and
// decay 0.5 halves the weights and leaves the biases alone.
TEST(OptimizerFactoryTest, SgdDecaysWeightsButNotBiases) {
  ModelPtr m = SmallMlp();
  v1::OptimizerSpec spec;
  spec.set_type("sgd");
  spec.set_lr(1.0);
  spec.set_weight_decay(0.5);
  auto opt = MakeOptimizer(spec, *m, nullptr);
  ASSERT_TRUE(opt.ok()) << opt.status();
  std::map<std::string, at::Tensor> before;
  for (auto& p : m->named_parameters()) {
    before[p.key()] = p.value().detach().clone();
    p.value().mutable_grad() = at::zeros_like(p.value());
  }
  (*opt)->step();
  for (auto& p : m->named_parameters()) {
    const bool is_bias = p.value().dim() == 1;
    at::Tensor expected = is_bias ? before[p.key()] : before[p.key()] * 0.5;
    EXPECT_TRUE(at::allclose(p.value(), expected)) << p.key();
  }
}

TEST(OptimizerFactoryTest, AdamWDecoupledDecayAndLearningRateUpdates) {
  ModelPtr m = SmallMlp();
  v1::OptimizerSpec spec;
  spec.set_type("adamw");
  spec.set_lr(0.1);
  spec.set_weight_decay(0.1);
  auto opt = MakeOptimizer(spec, *m, nullptr);
  ASSERT_TRUE(opt.ok()) << opt.status();
  ASSERT_EQ((*opt)->param_groups().size(), 2u);
  SetLearningRate(opt->get(), 0.01);
  for (auto& g : (*opt)->param_groups()) EXPECT_DOUBLE_EQ(g.options().get_lr(), 0.01);
  auto& no_decay = static_cast<torch::optim::AdamWOptions&>((*opt)->param_groups()[1].options());
  EXPECT_DOUBLE_EQ(no_decay.weight_decay(), 0.0);
}

TEST(OptimizerFactoryTest, UnknownTypeAndBadOptionsNameTheField) {
  ModelPtr m = SmallMlp();
  v1::OptimizerSpec spec;
  spec.set_type("lion");
  spec.set_lr(0.1);
  auto opt = MakeOptimizer(spec, *m, nullptr);
  EXPECT_EQ(opt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(opt.status().message().find("spec.optimizer.type: 'lion' is not built"), std::string::npos)
      << opt.status();
  spec.set_type("adam");
  spec.set_beta1(1.5);
  opt = MakeOptimizer(spec, *m, nullptr);
  EXPECT_NE(opt.status().message().find("spec.optimizer.beta1"), std::string::npos) << opt.status();
}

}  // namespace
}  // namespace pendulum::train
