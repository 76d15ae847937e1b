#include "worker/daemon/file_tail.h"

#include <fstream>

#include "gtest/gtest.h"
#include "tests/support/test_paths.h"

namespace pendulum::daemon {
namespace {

TEST(FileTailTest, ShortFileIsReturnedWhole) {
  const auto path = testing::MakeTestTempDir() / "stderr.log";
  std::ofstream(path) << "line one\nline two\n";
  EXPECT_EQ(ReadFileTail(path.string(), 4096), "line one\nline two\n");
}

TEST(FileTailTest, LongFileKeepsTheLastBytesFromALineStart) {
  const auto path = testing::MakeTestTempDir() / "stderr.log";
  {
    std::ofstream out(path);
    for (int i = 0; i < 1000; ++i) out << "progress line " << i << "\n";
    out << "FATAL: loss is NaN at step 77\n";
  }
  const std::string tail = ReadFileTail(path.string(), 4096);
  EXPECT_LE(tail.size(), 4096u);
  EXPECT_GT(tail.size(), 3000u);
  EXPECT_EQ(tail.rfind("progress line ", 0), 0u) << tail.substr(0, 40);
  EXPECT_NE(tail.find("FATAL: loss is NaN at step 77\n"), std::string::npos);
  EXPECT_EQ(tail.find("progress line 0\n"), std::string::npos);
}

TEST(FileTailTest, MissingFileIsEmpty) { EXPECT_EQ(ReadFileTail("/nonexistent/stderr.log", 4096), ""); }

TEST(FileTailTest, InvalidUtf8IsReplaced) {
  EXPECT_EQ(SanitizeUtf8("ok \xc3\xa9 bad \xff\xfe end"), "ok \xc3\xa9 bad ?? end");
  EXPECT_EQ(SanitizeUtf8("cut \xe2\x82"), "cut ??");
  EXPECT_EQ(SanitizeUtf8("\xe2\x82\xac"), "\xe2\x82\xac");
}

}  // namespace
}  // namespace pendulum::daemon
