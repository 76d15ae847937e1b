#include "worker/daemon/event_spool.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "proto/io/event_stream.h"
#include "tests/support/test_paths.h"

namespace pendulum::daemon {
namespace {

namespace fs = std::filesystem;

v1::TrainerEvent Scalar(uint64_t seq, size_t padding = 0) {
  v1::TrainerEvent e;
  e.set_seq(seq);
  e.mutable_scalars()->set_step(static_cast<int64_t>(seq));
  (*e.mutable_scalars()->mutable_values())["loss"] = 1.0 / static_cast<double>(seq);
  if (padding > 0) {
    e.set_time_unix_ms(1);
    e.mutable_scalars()->mutable_values()->insert({std::string(padding, 'x'), 0.0});
  }
  return e;
}

std::vector<v1::TrainerEvent> Range(uint64_t first, uint64_t last, size_t padding = 0) {
  std::vector<v1::TrainerEvent> out;
  for (uint64_t s = first; s <= last; ++s) out.push_back(Scalar(s, padding));
  return out;
}

size_t SegmentCount(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().rfind("seg-", 0) == 0;
  return n;
}

TEST(EventSpoolTest, AppendedEventsArePendingUntilAcked) {
  const fs::path dir = testing::MakeTestTempDir();
  auto spool = EventSpool::Open(dir);
  ASSERT_TRUE(spool.ok()) << spool.status();
  ASSERT_TRUE((*spool)->Append(Range(1, 10)).ok());
  EXPECT_EQ((*spool)->last_seq(), 10u);
  EXPECT_EQ((*spool)->pending_events(), 10u);
  auto pending = (*spool)->Pending(0, 100, 1 << 20);
  ASSERT_EQ(pending.size(), 10u);
  EXPECT_EQ(pending.front().seq(), 1u);
  EXPECT_EQ(pending.back().seq(), 10u);
  // A send cursor past some events returns only the rest, capped by max_events.
  pending = (*spool)->Pending(4, 3, 1 << 20);
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending.front().seq(), 5u);

  ASSERT_TRUE((*spool)->Ack(6).ok());
  EXPECT_EQ((*spool)->acked_seq(), 6u);
  EXPECT_EQ((*spool)->pending_events(), 4u);
  pending = (*spool)->Pending(0, 100, 1 << 20);
  ASSERT_EQ(pending.size(), 4u);
  EXPECT_EQ(pending.front().seq(), 7u);
  // Stale acks never move the mark back.
  ASSERT_TRUE((*spool)->Ack(3).ok());
  EXPECT_EQ((*spool)->acked_seq(), 6u);
}

TEST(EventSpoolTest, RejectsSeqGap) {
  const fs::path dir = testing::MakeTestTempDir();
  auto spool = EventSpool::Open(dir);
  ASSERT_TRUE(spool.ok());
  ASSERT_TRUE((*spool)->Append(Range(1, 3)).ok());
  const absl::Status gap = (*spool)->Append(Range(5, 6));
  EXPECT_EQ(gap.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(gap.message().find("seq 5"), std::string::npos) << gap;
  EXPECT_EQ((*spool)->last_seq(), 3u);
}

TEST(EventSpoolTest, ReopenAfterCrashRecoversUnackedEvents) {
  const fs::path dir = testing::MakeTestTempDir();
  {
    auto spool = EventSpool::Open(dir);
    ASSERT_TRUE(spool.ok());
    ASSERT_TRUE((*spool)->Append(Range(1, 20)).ok());
    ASSERT_TRUE((*spool)->Ack(12).ok());
    // Destroyed without any shutdown step, as a SIGKILL would leave it.
  }
  auto spool = EventSpool::Open(dir);
  ASSERT_TRUE(spool.ok()) << spool.status();
  EXPECT_EQ((*spool)->acked_seq(), 12u);
  EXPECT_EQ((*spool)->last_seq(), 20u);
  EXPECT_EQ((*spool)->recovery().events_recovered, 8u);
  auto pending = (*spool)->Pending(0, 100, 1 << 20);
  ASSERT_EQ(pending.size(), 8u);
  EXPECT_EQ(pending.front().seq(), 13u);
  EXPECT_DOUBLE_EQ(pending.front().scalars().values().at("loss"), 1.0 / 13);
  // Appending continues the sequence after recovery.
  ASSERT_TRUE((*spool)->Append(Range(21, 22)).ok());
  EXPECT_EQ((*spool)->last_seq(), 22u);
}

TEST(EventSpoolTest, TornTailIsCutAndAppendingContinues) {
  const fs::path dir = testing::MakeTestTempDir();
  {
    auto spool = EventSpool::Open(dir);
    ASSERT_TRUE(spool.ok());
    ASSERT_TRUE((*spool)->Append(Range(1, 5)).ok());
  }
  // Simulate a crash in the middle of the next append: half a record.
  fs::path segment;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("seg-", 0) == 0) segment = e.path();
  }
  ASSERT_FALSE(segment.empty());
  const auto good_size = fs::file_size(segment);
  {
    std::string framed;
    io::AppendDelimited(Scalar(6), &framed);
    std::ofstream out(segment, std::ios::binary | std::ios::app);
    out.write(framed.data(), static_cast<std::streamsize>(framed.size() / 2));
  }
  auto spool = EventSpool::Open(dir);
  ASSERT_TRUE(spool.ok()) << spool.status();
  EXPECT_GT((*spool)->recovery().torn_bytes_dropped, 0u);
  EXPECT_EQ(fs::file_size(segment), good_size);
  EXPECT_EQ((*spool)->last_seq(), 5u);
  ASSERT_TRUE((*spool)->Append(Range(6, 7)).ok());
  auto reopened_events = (*spool)->Pending(0, 100, 1 << 20);
  ASSERT_EQ(reopened_events.size(), 7u);
  spool->reset();
  auto again = EventSpool::Open(dir);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->recovery().torn_bytes_dropped, 0u);
  EXPECT_EQ((*again)->last_seq(), 7u);
}

TEST(EventSpoolTest, FullyAckedSegmentsAreUnlinked) {
  const fs::path dir = testing::MakeTestTempDir();
  auto spool = EventSpool::Open(dir);
  ASSERT_TRUE(spool.ok());
  // ~1 MiB events: each batch of 5 fills more than one 4 MiB segment.
  const size_t pad = 1 << 20;
  ASSERT_TRUE((*spool)->Append(Range(1, 5, pad)).ok());
  ASSERT_TRUE((*spool)->Append(Range(6, 10, pad)).ok());
  ASSERT_TRUE((*spool)->Append(Range(11, 11, pad)).ok());
  EXPECT_EQ(SegmentCount(dir), 3u);
  ASSERT_TRUE((*spool)->Ack(7).ok());  // first segment (1..5) fully acked
  EXPECT_EQ(SegmentCount(dir), 2u);
  ASSERT_TRUE((*spool)->Ack(11).ok());  // the newest segment stays for appends
  EXPECT_EQ(SegmentCount(dir), 1u);
  EXPECT_EQ((*spool)->pending_events(), 0u);
  EXPECT_EQ((*spool)->pending_bytes(), 0u);
  // Pending respects max_bytes but always returns at least one event.
  ASSERT_TRUE((*spool)->Append(Range(12, 14, pad)).ok());
  EXPECT_EQ((*spool)->Pending(11, 100, 1).size(), 1u);
  EXPECT_EQ((*spool)->Pending(11, 100, 3 * pad).size(), 2u);
}

TEST(EventSpoolTest, RemoveAllDeletesTheDirectory) {
  const fs::path dir = testing::MakeTestTempDir() / "spool";
  auto spool = EventSpool::Open(dir);
  ASSERT_TRUE(spool.ok());
  ASSERT_TRUE((*spool)->Append(Range(1, 2)).ok());
  ASSERT_TRUE((*spool)->RemoveAll().ok());
  EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace pendulum::daemon
