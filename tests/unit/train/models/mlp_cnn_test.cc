#include <ATen/ATen.h>

#include "gtest/gtest.h"
#include "worker/train/models/cnn_small.h"
#include "worker/train/models/mlp.h"
#include "worker/train/models/model_factory.h"
#include "worker/train/models/model_registry.h"

namespace pendulum::train {
namespace {

ModelInputs Images(int64_t c, int64_t side, int64_t classes) {
  ModelInputs in;
  in.num_classes = classes;
  in.example_shape = {c, side, side};
  return in;
}

TEST(MlpTest, ShapesNamesAndOptions) {
  v1::ModelSpec spec;
  spec.set_arch("mlp");
  spec.add_hidden(16);
  spec.add_hidden(8);
  spec.set_fc_bias(false);
  spec.set_activation("gelu");
  auto m = MakeMlp(spec, Images(1, 28, 10));
  ASSERT_TRUE(m.ok()) << m.status();
  ModelOutput out = (*m)->Forward(at::randn({5, 1, 28, 28}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(out.extra.at("features").sizes(), (std::vector<int64_t>{5, 8}));
  auto params = (*m)->named_parameters();
  EXPECT_EQ(params["fc0.weight"].sizes(), (std::vector<int64_t>{16, 784}));
  EXPECT_EQ(params["fc1.weight"].sizes(), (std::vector<int64_t>{8, 16}));
  EXPECT_FALSE(params.contains("head.bias"));
  EXPECT_EQ((*m)->arch(), "mlp");
}

TEST(MlpTest, BadFieldsAreNamed) {
  v1::ModelSpec spec;
  spec.set_arch("mlp");
  spec.add_hidden(0);
  auto m = MakeMlp(spec, Images(1, 28, 10));
  EXPECT_NE(m.status().message().find("spec.model.hidden[0]"), std::string::npos);
  spec.clear_hidden();
  spec.set_activation("tanh");
  m = MakeMlp(spec, Images(1, 28, 10));
  EXPECT_NE(m.status().message().find("spec.model.activation"), std::string::npos);
}

TEST(CnnSmallTest, ForwardBackwardOnCifarShapedInput) {
  v1::ModelSpec spec;
  spec.set_arch("cnn_small");
  spec.add_hidden(32);
  auto m = MakeCnnSmall(spec, Images(3, 32, 100));
  ASSERT_TRUE(m.ok()) << m.status();
  at::Tensor x = at::randn({4, 3, 32, 32});
  at::Tensor loss = (*m)->Forward(x).logits.sum();
  loss.backward();
  auto params = (*m)->named_parameters();
  EXPECT_EQ(params["head.weight"].sizes(), (std::vector<int64_t>{100, 32}));
  EXPECT_EQ(params["fc.weight"].sizes(), (std::vector<int64_t>{32, 64 * 8 * 8}));
  EXPECT_TRUE(params["conv1.weight"].grad().defined());
  EXPECT_FALSE(params.contains("conv1.bias"));  // BN follows the conv
  EXPECT_TRUE(params.contains("bn1.weight"));
}

TEST(CnnSmallTest, RejectsFlatInputs) {
  v1::ModelSpec spec;
  spec.set_arch("cnn_small");
  ModelInputs flat;
  flat.example_shape = {784};
  auto m = MakeCnnSmall(spec, flat);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("cnn_small needs image examples"), std::string::npos);
}

TEST(ModelFactoryTest, BuildsRegisteredArchsAndNamesUnbuiltOnes) {
  v1::ModelSpec spec;
  spec.set_arch("mlp");
  spec.set_num_classes(7);  // overrides the dataset's class count
  auto m = MakeModel(spec, Images(1, 28, 10));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->forward(at::randn({2, 1, 28, 28})).size(1), 7);
  EXPECT_NE(ModelRegistry::Global().Find("cnn_small"), nullptr);
  spec.set_arch("no_such_net");
  m = MakeModel(spec, Images(1, 28, 10));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("spec.model.arch: 'no_such_net' is not built in this version"),
            std::string::npos);
  EXPECT_NE(m.status().message().find("mlp"), std::string::npos);  // lists what is built
}

}  // namespace
}  // namespace pendulum::train
