// WRN, VGG-16 (TSCNC backbones) and the block-diagonal MLP (§6.3): shapes,
// layer names the TSCNC gates rely on, and the block-diagonal initialisation.
// The builders are called directly: this binary links train_models as a plain
// archive, so registry-only use would drop their objects.
#include <set>
#include <string>

#include <torch/utils.h>

#include "gtest/gtest.h"
#include "worker/train/models/block_mlp.h"
#include "worker/train/models/model_factory.h"
#include "worker/train/models/vgg.h"
#include "worker/train/models/wrn.h"

namespace pendulum::train {
namespace {

TEST(RegModelsTest, WrnForwardAndBlockNames) {
  torch::manual_seed(0);
  v1::ModelSpec spec;
  spec.set_arch("wrn");
  spec.set_wrn_depth(10);
  spec.set_wrn_width(1);
  ModelInputs in{10, {3, 32, 32}};
  auto model = MakeWrn(spec, in);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->Forward(at::randn({2, 3, 32, 32})).logits.sizes(), (std::vector<int64_t>{2, 10}));
  std::set<std::string> names;
  for (const auto& m : (*model)->named_modules()) names.insert(m.key());
  EXPECT_TRUE(names.count("group0.block0.conv1"));
  EXPECT_TRUE(names.count("group2.block0.conv1"));
  EXPECT_TRUE(names.count("group1.block0.shortcut"));
  spec.set_wrn_depth(11);
  EXPECT_FALSE(MakeWrn(spec, in).ok());
}

TEST(RegModelsTest, Vgg16OnFashionMnistShapes) {
  torch::manual_seed(0);
  v1::ModelSpec spec;
  spec.set_arch("vgg16");
  auto model = MakeVgg16(spec, ModelInputs{10, {1, 28, 28}});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->Forward(at::randn({2, 1, 28, 28})).logits.sizes(), (std::vector<int64_t>{2, 10}));
  int convs = 0;
  for (const auto& m : (*model)->modules()) convs += m->as<torch::nn::Conv2dImpl>() != nullptr;
  EXPECT_EQ(convs, 13);
}

TEST(RegModelsTest, BlockMlpIsBlockDiagonal) {
  torch::manual_seed(0);
  v1::ModelSpec spec;
  spec.set_arch("block_mlp");
  auto model = MakeBlockMlp(spec, ModelInputs{8, {8}});
  ASSERT_TRUE(model.ok()) << model.status();
  int linears = 0;
  for (const auto& p : (*model)->named_parameters()) {
    if (p.key().find("weight") == std::string::npos) {
      EXPECT_EQ(p.value().abs().max().item<double>(), 0.0) << p.key();  // biases 0
      continue;
    }
    ++linears;
    const at::Tensor& w = p.value();
    EXPECT_EQ(w.slice(0, 0, 4).slice(1, 4, 8).abs().max().item<double>(), 0.0) << p.key();
    EXPECT_EQ(w.slice(0, 4, 8).slice(1, 0, 4).abs().max().item<double>(), 0.0) << p.key();
    EXPECT_GT(w.slice(0, 0, 4).slice(1, 0, 4).std().item<double>(), 1.0) << p.key();  // 2·N(0,1)
  }
  EXPECT_EQ(linears, 5);  // 4 hidden ReLU layers + head
  // The two halves do not interact: changing input block 1 leaves output block 0 alone.
  at::Tensor x = at::randn({4, 8});
  at::Tensor x2 = x.clone();
  x2.slice(1, 4, 8).add_(1.0);
  at::Tensor y = (*model)->Forward(x).logits, y2 = (*model)->Forward(x2).logits;
  EXPECT_TRUE(at::equal(y.slice(1, 0, 4), y2.slice(1, 0, 4)));
  EXPECT_FALSE(at::equal(y.slice(1, 4, 8), y2.slice(1, 4, 8)));
}

}  // namespace
}  // namespace pendulum::train
