#include "worker/train/data/idx_reader.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "tests/support/test_paths.h"
#include "tests/unit/train/data/data_test_files.h"
#include "worker/train/data/dataset_factory.h"

namespace pendulum::train {
namespace {

using testing::IdxBytes;

TEST(IdxReaderTest, ReadsRawAndGzipIdentically) {
  auto dir = pendulum::testing::MakeTestTempDir();
  const std::string bytes = IdxBytes({2, 3}, {1, 2, 3, 4, 5, 6});
  testing::WriteRaw((dir / "a").string(), bytes);
  testing::WriteGzip((dir / "a.gz").string(), bytes);
  for (const char* name : {"a", "a.gz"}) {
    auto a = ReadIdxFile((dir / name).string());
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->dims, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a->data, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
  }
}

TEST(IdxReaderTest, MissingFileIsNotFoundNamingThePath) {
  auto dir = pendulum::testing::MakeTestTempDir();
  auto a = ReadIdxFile((dir / "nope.gz").string());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(a.status().message().find((dir / "nope.gz").string()), std::string::npos);
}

TEST(IdxReaderTest, CorruptFilesAreDataLossNamingThePath) {
  auto dir = pendulum::testing::MakeTestTempDir();
  const std::string good = IdxBytes({4, 4}, std::vector<uint8_t>(16, 9));
  struct Case {
    std::string name, bytes;
  } cases[] = {
      {"short", good.substr(0, 3)},
      {"magic", std::string("\x01\x00\x08\x02", 4) + good.substr(4)},
      {"type", std::string("\x00\x00\x0d\x02", 4) + good.substr(4)},
      {"truncated", good.substr(0, good.size() - 1)},
      {"too_long", good + "x"},
  };
  for (const auto& c : cases) {
    const std::string path = (dir / c.name).string();
    testing::WriteRaw(path, c.bytes);
    auto a = ReadIdxFile(path);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss) << c.name << ": " << a.status();
    EXPECT_NE(a.status().message().find(path), std::string::npos) << a.status();
  }
  // A gzip stream cut in the middle.
  const std::string gz_path = (dir / "cut.gz").string();
  testing::WriteGzip(gz_path, IdxBytes({64, 64}, std::vector<uint8_t>(4096, 3)));
  std::string gz;
  {
    std::ifstream in(gz_path, std::ios::binary);
    gz.assign(std::istreambuf_iterator<char>(in), {});
  }
  testing::WriteRaw(gz_path, gz.substr(0, gz.size() / 2));
  auto a = ReadIdxFile(gz_path);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss) << a.status();
}

TEST(FashionMnistTest, LoadsGzAndRawWithNormalisationAndSubsets) {
  for (bool gz : {true, false}) {
    auto dir = pendulum::testing::MakeTestTempDir();
    testing::WriteFashionMnist(dir.string(), 30, 12, 28, 28, gz);
    v1::DataSpec spec;
    spec.set_dataset("fashion_mnist");
    spec.set_path(dir.string());
    auto b = LoadData(spec, 0);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(b->train.size(), 30);
    EXPECT_EQ(b->eval.size(), 12);
    EXPECT_EQ(b->train.example_shape, (std::vector<int64_t>{1, 28, 28}));
    EXPECT_EQ(b->train.labels[13].item<int64_t>(), 3);
    EXPECT_EQ(b->train.images[2][0][0][5].item<uint8_t>(), (2 * 7 + 5) % 256);
    spec.set_train_subset(7);
    spec.set_eval_subset(5);
    b = LoadData(spec, 0);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->train.size(), 7);
    EXPECT_EQ(b->eval.size(), 5);
  }
}

TEST(FashionMnistTest, MismatchedLabelsAreCorrupt) {
  auto dir = pendulum::testing::MakeTestTempDir();
  testing::WriteFashionMnist(dir.string(), 10, 4, 28, 28, false);
  testing::WriteRaw((dir / "t10k-labels-idx1-ubyte").string(), IdxBytes({3}, {1, 2, 3}));
  v1::DataSpec spec;
  spec.set_dataset("fashion_mnist");
  spec.set_path(dir.string());
  auto b = LoadData(spec, 0);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(b.status().message().find("t10k-labels-idx1-ubyte"), std::string::npos) << b.status();
}

TEST(DatasetFactoryTest, UnknownAndUnsupportedDatasetsNameTheField) {
  v1::DataSpec spec;
  spec.set_dataset("mnist2");
  auto b = LoadData(spec, 0);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("spec.data.dataset"), std::string::npos);
  spec.set_dataset("imagenet_folder");
  b = LoadData(spec, 0);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(b.status().message().find("not supported yet"), std::string::npos);
}

}  // namespace
}  // namespace pendulum::train
