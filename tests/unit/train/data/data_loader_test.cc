#include "worker/train/data/data_loader.h"

#include <set>

#include "gtest/gtest.h"
#include "worker/train/data/dataset_factory.h"

namespace pendulum::train {
namespace {

Dataset ImageDataset(int64_t n, int64_t c, int64_t side) {
  Dataset d;
  d.name = "test";
  d.num_classes = 10;
  d.example_shape = {c, side, side};
  d.images = at::randint(256, {n, c, side, side}, at::kLong).to(at::kByte);
  d.labels = at::arange(n, at::kLong).remainder(10);
  d.mean = std::vector<float>(c, 0.5f);
  d.std = std::vector<float>(c, 0.25f);
  return d;
}

std::vector<Batch> Epoch(DataLoader& loader, int64_t epoch, int64_t first = 0) {
  std::vector<Batch> out;
  loader.StartEpoch(epoch, first);
  while (auto b = loader.Next()) out.push_back(*b);
  return out;
}

TEST(DataLoaderTest, CoversEveryExampleOncePerEpochAndDropsLastPartialBatch) {
  Dataset d = ImageDataset(50, 1, 8);
  DataLoaderOptions o;
  o.batch_size = 8;
  DataLoader loader(&d, {}, o);
  EXPECT_EQ(loader.batches_per_epoch(), 6);
  auto batches = Epoch(loader, 0);
  ASSERT_EQ(batches.size(), 6u);
  std::set<int64_t> seen;
  for (const auto& b : batches) {
    EXPECT_EQ(b.x.sizes(), (std::vector<int64_t>{8, 1, 8, 8}));
    for (int64_t i = 0; i < 8; ++i) {
      seen.insert(b.indices[i].item<int64_t>());
      EXPECT_EQ(b.y[i].item<int64_t>(), b.indices[i].item<int64_t>() % 10);
    }
  }
  EXPECT_EQ(seen.size(), 48u);
}

TEST(DataLoaderTest, NormalisesWithDatasetMeanAndStd) {
  Dataset d = ImageDataset(4, 2, 4);
  DataLoaderOptions o;
  o.batch_size = 4;
  o.shuffle = false;
  DataLoader loader(&d, {}, o);
  auto b = Epoch(loader, 0);
  at::Tensor expected = (d.images.to(at::kFloat) / 255.0 - 0.5) / 0.25;
  EXPECT_TRUE(at::allclose(b[0].x, expected, 1e-5, 1e-5));
}

TEST(DataLoaderTest, OrderIsDeterministicPerSeedAndEpoch) {
  Dataset d = ImageDataset(64, 1, 8);
  DataLoaderOptions o;
  o.batch_size = 16;
  o.seed = 7;
  DataLoader a(&d, {}, o), b(&d, {}, o);
  auto ea = Epoch(a, 3), eb = Epoch(b, 3), other = Epoch(a, 4);
  ASSERT_EQ(ea.size(), eb.size());
  for (size_t i = 0; i < ea.size(); ++i) EXPECT_TRUE(ea[i].indices.equal(eb[i].indices));
  EXPECT_FALSE(ea[0].indices.equal(other[0].indices));
  o.seed = 8;
  DataLoader c(&d, {}, o);
  EXPECT_FALSE(Epoch(c, 3)[0].indices.equal(ea[0].indices));
}

TEST(DataLoaderTest, ThreadedPrefetchGivesTheSameBatchesAsInline) {
  Dataset d = ImageDataset(200, 3, 32);
  DataLoaderOptions o;
  o.batch_size = 16;
  o.augment = true;
  o.seed = 11;
  DataLoader inline_loader(&d, {}, o);
  o.threads = 3;
  o.prefetch = 4;
  DataLoader threaded(&d, {}, o);
  for (int64_t epoch : {0, 1}) {
    auto a = Epoch(inline_loader, epoch), b = Epoch(threaded, epoch);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(a[i].x.equal(b[i].x)) << "epoch " << epoch << " batch " << i;
      EXPECT_TRUE(a[i].y.equal(b[i].y));
    }
  }
}

TEST(DataLoaderTest, StartingMidEpochResumesTheSameSequence) {
  Dataset d = ImageDataset(100, 1, 28);
  DataLoaderOptions o;
  o.batch_size = 10;
  o.augment = true;
  o.seed = 5;
  o.threads = 2;
  DataLoader loader(&d, {}, o);
  auto full = Epoch(loader, 2);
  auto tail = Epoch(loader, 2, 6);
  ASSERT_EQ(tail.size(), 4u);
  for (size_t i = 0; i < tail.size(); ++i) EXPECT_TRUE(full[6 + i].x.equal(tail[i].x));
}

TEST(DataLoaderTest, AugmentationCropsAndFlipsDeterministically) {
  Dataset d = ImageDataset(64, 1, 28);
  DataLoaderOptions o;
  o.batch_size = 64;
  o.shuffle = false;
  DataLoader plain(&d, {}, o);
  o.augment = true;
  DataLoader aug(&d, {}, o);
  auto p = Epoch(plain, 0)[0].x, a0 = Epoch(aug, 0)[0].x, a0_again = Epoch(aug, 0)[0].x,
       a1 = Epoch(aug, 1)[0].x;
  EXPECT_TRUE(a0.equal(a0_again));
  EXPECT_FALSE(a0.equal(p));
  EXPECT_FALSE(a0.equal(a1));
  // Every augmented image is a shifted (<= 2 px) and maybe flipped copy:
  // the padding value (normalised 0) shows up where the crop left the image,
  // and values otherwise come from the original.
  int64_t exact = 0;
  for (int64_t i = 0; i < 64; ++i) {
    if (a0[i].equal(p[i])) ++exact;
  }
  EXPECT_LT(exact, 16);  // 1/25 * 1/2 chance each of the identity transform
}

TEST(DataLoaderTest, SubsetIndicesAndSyntheticData) {
  v1::SyntheticDataSpec s;
  s.set_num_train(40);
  s.set_num_eval(8);
  s.set_num_classes(4);
  s.add_shape(1);
  s.add_shape(6);
  s.add_shape(6);
  auto a = MakeSyntheticData(s, 3), b = MakeSyntheticData(s, 3), c = MakeSyntheticData(s, 4);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(a->train.images.equal(b->train.images));
  EXPECT_TRUE(a->train.labels.equal(b->train.labels));
  EXPECT_FALSE(a->train.images.equal(c->train.images));
  EXPECT_EQ(a->train.images.sizes(), (std::vector<int64_t>{40, 1, 6, 6}));
  EXPECT_LT(a->train.labels.max().item<int64_t>(), 4);

  DataLoaderOptions o;
  o.batch_size = 3;
  DataLoader loader(&a->train, {1, 5, 9, 13, 17, 21}, o);
  EXPECT_EQ(loader.num_examples(), 6);
  std::set<int64_t> seen;
  for (const auto& batch : Epoch(loader, 0)) {
    for (int64_t i = 0; i < batch.indices.size(0); ++i) {
      const int64_t e = batch.indices[i].item<int64_t>();
      seen.insert(e);
      EXPECT_TRUE(batch.x[i].equal(a->train.images[e]));  // float data passes through
    }
  }
  EXPECT_EQ(seen, (std::set<int64_t>{1, 5, 9, 13, 17, 21}));
}

}  // namespace
}  // namespace pendulum::train
