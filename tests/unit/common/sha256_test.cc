// common/sha256: the one SHA-256 behind token hashes, migration, artifact and
// checkpoint checksums. Known vectors (FIPS 180-2), and the incremental and
// file forms agree with the one-shot form for any split of the input.
#include "common/sha256.h"

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/test_paths.h"

namespace pendulum {
namespace {

constexpr char kEmpty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kTwoBlocks[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr char kTwoBlocksInput[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), kEmpty);
  EXPECT_EQ(Sha256Hex("abc"), kAbc);
  EXPECT_EQ(Sha256Hex(kTwoBlocksInput), kTwoBlocks);
}

TEST(Sha256Test, IncrementalEqualsOneShotForEverySplit) {
  const std::string input = kTwoBlocksInput;
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    Sha256 sha;
    sha.Update(std::string_view(input).substr(0, cut));
    sha.Update(std::string_view(input).substr(cut));
    EXPECT_EQ(sha.HexDigest(), kTwoBlocks) << "split at " << cut;
  }
  Sha256 nothing;
  EXPECT_EQ(nothing.HexDigest(), kEmpty);
}

TEST(Sha256Test, FileHashEqualsStringHashAcrossReadPieces) {
  auto dir = testing::MakeTestTempDir();
  // 2.5 MiB: more than two of the 1 MiB read pieces, with a short last one.
  std::string bytes(5 << 19, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char((i * 131) ^ (i >> 9));
  const std::string path = (dir / "blob").string();
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  auto hex = Sha256FileHex(path);
  ASSERT_TRUE(hex.ok()) << hex.status();
  EXPECT_EQ(*hex, Sha256Hex(bytes));

  std::ofstream(dir / "empty", std::ios::binary);
  EXPECT_EQ(*Sha256FileHex((dir / "empty").string()), kEmpty);
}

TEST(Sha256Test, MissingFileIsNotFoundNamingThePath) {
  auto dir = testing::MakeTestTempDir();
  const std::string path = (dir / "nope").string();
  auto hex = Sha256FileHex(path);
  EXPECT_EQ(hex.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(hex.status().message().find(path), std::string::npos) << hex.status();
}

}  // namespace
}  // namespace pendulum
