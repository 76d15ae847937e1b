#include "worker/train/data/cifar_reader.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "tests/support/test_paths.h"
#include "tests/unit/train/data/data_test_files.h"
#include "worker/train/data/dataset_factory.h"

namespace pendulum::train {
namespace {

TEST(CifarReaderTest, Cifar10FromBatchFilesInSubfolder) {
  auto root = pendulum::testing::MakeTestTempDir();
  auto dir = root / "cifar-10-batches-bin";
  std::filesystem::create_directories(dir);
  for (int i = 1; i <= 5; ++i) {
    testing::WriteRaw((dir / ("data_batch_" + std::to_string(i) + ".bin")).string(),
                      testing::CifarRecords(3, 1, 10));
  }
  testing::WriteRaw((dir / "test_batch.bin").string(), testing::CifarRecords(4, 1, 10));
  v1::DataSpec spec;
  spec.set_dataset("cifar10");
  spec.set_path(root.string());
  auto b = LoadData(spec, 0);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->train.size(), 15);
  EXPECT_EQ(b->eval.size(), 4);
  EXPECT_EQ(b->train.example_shape, (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(b->train.num_classes, 10);
  EXPECT_EQ(b->eval.labels[2].item<int64_t>(), 2);
  // Channel-major pixels: channel 1, row 0, col 0 is byte 1024 of the record.
  EXPECT_EQ(b->eval.images[2][1][0][0].item<uint8_t>(), (2 * 3 + 1024) % 256);
  EXPECT_EQ(b->train.mean.size(), 3u);
}

TEST(CifarReaderTest, Cifar100UsesTheFineLabel) {
  auto dir = pendulum::testing::MakeTestTempDir();
  testing::WriteRaw((dir / "train.bin").string(), testing::CifarRecords(30, 2, 100));
  testing::WriteRaw((dir / "test.bin").string(), testing::CifarRecords(2, 2, 100));
  v1::DataSpec spec;
  spec.set_dataset("cifar100");
  spec.set_path(dir.string());
  auto b = LoadData(spec, 0);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->train.num_classes, 100);
  EXPECT_EQ(b->train.labels[27].item<int64_t>(), 27);
}

TEST(CifarReaderTest, TruncatedAndMissingFilesNameThePath) {
  auto dir = pendulum::testing::MakeTestTempDir();
  const std::string path = (dir / "train.bin").string();
  testing::WriteRaw(path, testing::CifarRecords(2, 2, 100).substr(0, 3000));
  testing::WriteRaw((dir / "test.bin").string(), testing::CifarRecords(2, 2, 100));
  v1::DataSpec spec;
  spec.set_dataset("cifar100");
  spec.set_path(dir.string());
  auto b = LoadData(spec, 0);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(b.status().message().find(path), std::string::npos) << b.status();

  spec.set_dataset("cifar10");
  b = LoadData(spec, 0);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(b.status().message().find("data_batch_1.bin"), std::string::npos) << b.status();

  spec.set_path("");
  b = LoadData(spec, 0);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("spec.data.path"), std::string::npos);
}

TEST(CifarReaderTest, OutOfRangeLabelIsCorrupt) {
  auto dir = pendulum::testing::MakeTestTempDir();
  std::string rec = testing::CifarRecords(1, 1, 10);
  rec[0] = char(11);
  testing::WriteRaw((dir / "x.bin").string(), rec);
  auto d = ReadCifarFiles({(dir / "x.bin").string()}, 1, 10, "t");
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace pendulum::train
