#include "worker/train/data/cifar_reader.h"

#include <filesystem>
#include <string>
#include <vector>

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

// CIFAR-100 binary records written here byte by byte: 1 coarse label byte,
// 1 fine label byte, then 3072 pixel bytes (R, G, B planes of 32x32, row-major).
// The coarse label differs from the fine one, so reading the wrong byte (or
// mis-aligning records by one) changes both labels and pixels.
std::string Cifar100Record(int coarse, int fine, int salt) {
  std::string r;
  r.push_back(char(coarse));
  r.push_back(char(fine));
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 32; ++y) {
      for (int x = 0; x < 32; ++x) r.push_back(char((salt * 7 + c * 50 + y * 3 + x) % 256));
    }
  }
  return r;
}

TEST(CifarReaderTest, Cifar100GeneratedFileReadsFineLabelsAndPixels) {
  auto dir = pendulum::testing::MakeTestTempDir();
  const std::vector<int> fine = {99, 0, 42, 17, 58};
  std::string train, test;
  for (size_t i = 0; i < fine.size(); ++i) train += Cifar100Record((fine[i] * 7 + 3) % 20, fine[i], int(i));
  test += Cifar100Record(19, 5, 100);
  test += Cifar100Record(0, 63, 101);
  testing::WriteRaw((dir / "train.bin").string(), train);
  testing::WriteRaw((dir / "test.bin").string(), test);
  ASSERT_EQ(train.size(), fine.size() * 3074u);

  v1::DataSpec spec;
  spec.set_dataset("cifar100");
  spec.set_path(dir.string());
  auto b = LoadData(spec, 0);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->train.size(), 5);
  ASSERT_EQ(b->eval.size(), 2);
  EXPECT_EQ(b->train.num_classes, 100);
  EXPECT_EQ(b->train.example_shape, (std::vector<int64_t>{3, 32, 32}));
  for (size_t i = 0; i < fine.size(); ++i) EXPECT_EQ(b->train.labels[int64_t(i)].item<int64_t>(), fine[i]) << i;
  EXPECT_EQ(b->eval.labels[0].item<int64_t>(), 5);
  EXPECT_EQ(b->eval.labels[1].item<int64_t>(), 63);
  // Pixels start after both label bytes: record 3, channel 2, row 4, col 5.
  EXPECT_EQ(b->train.images[3][2][4][5].item<uint8_t>(), (3 * 7 + 2 * 50 + 4 * 3 + 5) % 256);
  EXPECT_EQ(b->train.images[4][0][31][31].item<uint8_t>(), (4 * 7 + 0 + 31 * 3 + 31) % 256);
  EXPECT_EQ(b->eval.images[1][1][0][0].item<uint8_t>(), (101 * 7 + 50) % 256);

  // A fine label of 100 or more is corrupt, even with a valid coarse byte.
  testing::WriteRaw((dir / "bad.bin").string(), Cifar100Record(3, 100, 0));
  auto bad = ReadCifarFiles({(dir / "bad.bin").string()}, 2, 100, "cifar100");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  // A file that is not a whole number of 3074-byte records is corrupt.
  testing::WriteRaw((dir / "short.bin").string(), train.substr(0, 3074 + 3073));
  auto short_file = ReadCifarFiles({(dir / "short.bin").string()}, 2, 100, "cifar100");
  EXPECT_EQ(short_file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(short_file.status().message().find("short.bin"), std::string::npos) << short_file.status();
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
