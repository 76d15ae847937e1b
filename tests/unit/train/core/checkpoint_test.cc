#include "worker/train/core/checkpoint.h"

#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "gtest/gtest.h"
#include "tests/support/test_paths.h"
#include "worker/train/core/optimizer_factory.h"
#include "worker/train/models/mlp.h"

namespace pendulum::train {
namespace {

ModelPtr MakeNet(uint64_t seed) {
  at::manual_seed(seed);
  MlpOptions o;
  o.in_features = 6;
  o.hidden = {5};
  o.num_classes = 3;
  return std::make_shared<Mlp>(o);
}

void TrainSteps(Model& m, torch::optim::Optimizer& opt, int steps, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (int i = 0; i < steps; ++i) {
    at::Tensor x = at::randn({8, 6}, gen);
    at::Tensor y = at::randint(3, {8}, gen, at::kLong);
    opt.zero_grad();
    at::cross_entropy_loss(m.forward(x), y).backward();
    opt.step();
  }
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = pendulum::testing::MakeTestTempDir();
    spec_.set_name("ckpt");
    spec_.mutable_model()->set_arch("mlp");
    spec_.mutable_optimizer()->set_type("adamw");
    spec_.mutable_optimizer()->set_lr(0.01);
  }
  std::filesystem::path dir_;
  v1::RunSpec spec_;
};

TEST_F(CheckpointTest, RoundTripRestoresModelOptimizerRngAndPosition) {
  ModelPtr a = MakeNet(1);
  auto opt_a = MakeOptimizer(spec_.optimizer(), *a, nullptr);
  ASSERT_TRUE(opt_a.ok());
  TrainSteps(*a, **opt_a, 3, 100);
  TrainPosition pos{17, 0, 2, 2, 5, 0};
  auto saved = SaveCheckpoint(dir_.string(), pos, spec_, *a, opt_a->get(), nullptr);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->path, (dir_ / "step-17.ckpt").string());
  EXPECT_EQ(saved->bytes, int64_t(std::filesystem::file_size(saved->path)));
  EXPECT_EQ(saved->sha256.size(), 64u);
  EXPECT_FALSE(std::filesystem::exists(saved->path + ".tmp"));
  const at::Tensor rng_draw_a = at::rand({4});

  // A differently initialised model + fresh optimizer, then load.
  ModelPtr b = MakeNet(2);
  auto opt_b = MakeOptimizer(spec_.optimizer(), *b, nullptr);
  ASSERT_TRUE(opt_b.ok());
  auto r = CheckpointReader::Open(saved->path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->position().step, 17);
  EXPECT_EQ((*r)->position().epoch, 2);
  EXPECT_EQ((*r)->position().batch_in_epoch, 5);
  EXPECT_EQ((*r)->spec().name(), "ckpt");
  ASSERT_TRUE((*r)->LoadModel(b.get(), true).ok());
  ASSERT_TRUE((*r)->LoadOptimizer(opt_b->get()).ok());
  ASSERT_TRUE((*r)->RestoreRng().ok());
  EXPECT_TRUE(at::rand({4}).equal(rng_draw_a));  // the generator continues identically

  // Continuing both must give bit-identical parameters (Adam moments restored).
  TrainSteps(*a, **opt_a, 2, 200);
  TrainSteps(*b, **opt_b, 2, 200);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) EXPECT_TRUE(p.value().equal(pb[p.key()])) << p.key();
}

TEST_F(CheckpointTest, NonStrictLoadReportsMissingAndShapeMismatchFails) {
  ModelPtr a = MakeNet(1);
  auto saved = SaveCheckpoint(dir_.string(), TrainPosition{}, spec_, *a, nullptr, nullptr);
  ASSERT_TRUE(saved.ok());
  MlpOptions bigger;
  bigger.in_features = 6;
  bigger.hidden = {5, 4};
  bigger.num_classes = 3;
  auto b = std::make_shared<Mlp>(bigger);
  auto r = CheckpointReader::Open(saved->path);
  ASSERT_TRUE(r.ok());
  std::vector<std::string> missing;
  // fc0 matches; fc1 is new; head has another shape → error names the tensor.
  absl::Status s = (*r)->LoadModel(b.get(), false, &missing);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("head.weight"), std::string::npos) << s;

  MlpOptions same_head = bigger;
  same_head.hidden = {5};
  auto c = std::make_shared<Mlp>(same_head);
  EXPECT_TRUE((*r)->LoadModel(c.get(), false, &missing).ok());
  EXPECT_TRUE(missing.empty());
  EXPECT_TRUE(c->named_parameters()["fc0.weight"].equal(a->named_parameters()["fc0.weight"]));
  EXPECT_EQ((*r)->LoadOptimizer(nullptr).code(), absl::StatusCode::kDataLoss);  // none saved
}

TEST_F(CheckpointTest, MissingAndCorruptFilesNameThePath) {
  auto r = CheckpointReader::Open((dir_ / "nope.ckpt").string());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  const std::string bad = (dir_ / "bad.ckpt").string();
  std::ofstream(bad) << "not a zip archive at all";
  r = CheckpointReader::Open(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status();

  // A real checkpoint cut in half.
  ModelPtr a = MakeNet(1);
  auto saved = SaveCheckpoint(dir_.string(), TrainPosition{}, spec_, *a, nullptr, nullptr);
  ASSERT_TRUE(saved.ok());
  std::filesystem::resize_file(saved->path, saved->bytes / 2);
  r = CheckpointReader::Open(saved->path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
}

}  // namespace
}  // namespace pendulum::train
