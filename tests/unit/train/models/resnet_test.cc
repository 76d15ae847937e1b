// ResNet-32 / ResNet-18 shapes, features, the growable classifier (old rows
// kept, no-bias option) and the ModelRegistry builders.

#include <memory>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)

#include "gtest/gtest.h"
#include "worker/train/models/model_factory.h"
#include "worker/train/models/resnet.h"

namespace pendulum::train::models {
namespace {

TEST(ResNetTest, ResNet32HasCifarLayoutAndSixtyFourFeatures) {
  auto model = MakeResNet({"resnet32", 10, true, 3, true});
  ASSERT_TRUE(model.ok()) << model.status();
  (*model)->eval();
  at::Tensor x = at::randn({2, 3, 32, 32});
  ModelOutput out = (*model)->Forward(x);
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 10}));
  ASSERT_TRUE(out.extra.count("features"));
  EXPECT_EQ(out.extra["features"].sizes(), (std::vector<int64_t>{2, 64}));
  EXPECT_GE(out.extra["features"].min().item<double>(), 0.0);  // post-ReLU
  // 31 convs + fc: 1 stem + 15 blocks x 2 convs = 31 conv weights.
  int convs = 0;
  for (const auto& p : (*model)->named_parameters()) {
    if (p.value().dim() == 4) ++convs;
  }
  EXPECT_EQ(convs, 31);
  // About 0.46M parameters (He et al. 2016, Table 6).
  int64_t n = 0;
  for (const auto& p : (*model)->parameters()) n += p.numel();
  EXPECT_GT(n, 450000);
  EXPECT_LT(n, 480000);
}

TEST(ResNetTest, ResNet18OnSmallGreyImages) {
  auto model = MakeResNet({"resnet18", 5, false, 1, true});
  ASSERT_TRUE(model.ok()) << model.status();
  (*model)->eval();
  ModelOutput out = (*model)->Forward(at::randn({2, 1, 28, 28}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(out.extra["features"].size(1), 512);
  EXPECT_FALSE((*model)->fc()->has_bias());
  EXPECT_FALSE((*model)->fc()->bias.defined());
}

TEST(ResNetTest, GrowingTheClassifierKeepsOldRowsAndLogits) {
  auto made = MakeResNet({"resnet32", 4, true, 3, true});
  ASSERT_TRUE(made.ok());
  auto model = *made;
  model->eval();
  at::Tensor x = at::randn({3, 3, 32, 32});
  at::Tensor before = model->Forward(x).logits.detach().clone();
  at::Tensor old_w = model->fc()->weight.detach().clone();
  {
    at::NoGradGuard no_grad;
    model->fc()->bias.fill_(0.25);
  }
  model->GrowClasses(7);
  EXPECT_EQ(model->num_classes(), 7);
  EXPECT_TRUE(at::equal(model->fc()->weight.narrow(0, 0, 4), old_w));
  EXPECT_TRUE(at::allclose(model->fc()->bias.narrow(0, 0, 4), at::full({4}, 0.25)));
  EXPECT_TRUE(at::equal(model->fc()->bias.narrow(0, 4, 3), at::zeros({3})));
  EXPECT_TRUE(model->fc()->weight.requires_grad());
  at::Tensor after = model->Forward(x).logits;
  EXPECT_EQ(after.size(1), 7);
  EXPECT_TRUE(at::allclose(after.narrow(1, 0, 4), before + 0.25, 1e-5, 1e-5));
  // The module's parameter list holds the new tensors (an optimizer rebuilt now sees them).
  bool found = false;
  for (const auto& p : model->named_parameters()) {
    if (p.key() == "fc.weight") {
      found = true;
      EXPECT_EQ(p.value().size(0), 7);
    }
  }
  EXPECT_TRUE(found);
}

TEST(ResNetTest, CopyModuleStateMakesAnIdenticalTeacher) {
  auto a = *MakeResNet({"resnet32", 6, false, 3, true});
  auto b = *MakeResNet({"resnet32", 6, false, 3, true});
  a->eval();
  b->eval();
  at::Tensor x = at::randn({2, 3, 32, 32});
  EXPECT_FALSE(at::allclose(a->Forward(x).logits, b->Forward(x).logits));
  CopyModuleState(*a, *b);
  EXPECT_TRUE(at::equal(a->Forward(x).logits, b->Forward(x).logits));
}

TEST(ResNetTest, RegistryBuildsResNetsFromSpec) {
  v1::ModelSpec spec;
  spec.set_arch("resnet32");
  spec.set_fc_bias(false);
  ModelInputs inputs;
  inputs.num_classes = 10;
  inputs.example_shape = {1, 28, 28};
  auto model = MakeModel(spec, inputs);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->arch(), "resnet32");
  auto* fc = dynamic_cast<FeatureClassifier*>(model->get());
  ASSERT_NE(fc, nullptr);
  EXPECT_FALSE(fc->fc()->has_bias());

  inputs.example_shape = {784};
  auto bad = MakeModel(spec, inputs);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("spec.model.arch"), std::string::npos);
}

}  // namespace
}  // namespace pendulum::train::models
