#include "proto/io/event_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pendulum::io {
namespace {

v1::TrainerEvent MakeScalarEvent(uint64_t seq, double loss) {
  v1::TrainerEvent e;
  e.set_seq(seq);
  e.mutable_scalars()->set_step(static_cast<int64_t>(seq) * 10);
  (*e.mutable_scalars()->mutable_values())["loss"] = loss;
  return e;
}

TEST(EventStreamTest, RoundTripsThroughAPipe) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  for (uint64_t seq = 1; seq <= 100; ++seq) {
    ASSERT_TRUE(WriteDelimited(fds[1], MakeScalarEvent(seq, 1.0 / seq)).ok());
  }
  close(fds[1]);
  EventReader reader(fds[0]);
  for (uint64_t seq = 1; seq <= 100; ++seq) {
    auto next = reader.Next();
    ASSERT_TRUE(next.ok()) << next.status();
    ASSERT_TRUE(next->has_value());
    EXPECT_EQ((*next)->seq(), seq);
    EXPECT_DOUBLE_EQ((*next)->scalars().values().at("loss"), 1.0 / seq);
  }
  auto end = reader.Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
  close(fds[0]);
}

TEST(EventStreamTest, TruncatedTailIsDataLossButEarlierEventsSurvive) {
  std::string data;
  AppendDelimited(MakeScalarEvent(1, 0.5), &data);
  AppendDelimited(MakeScalarEvent(2, 0.25), &data);
  data.resize(data.size() - 3);  // writer killed mid-record
  std::vector<v1::TrainerEvent> events;
  size_t consumed = 0;
  absl::Status s = ParseDelimitedEvents(data, &events, &consumed);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seq(), 1u);
  EXPECT_LT(consumed, data.size());
}

TEST(EventStreamTest, HugeLengthPrefixIsRejectedAsCorrupt) {
  const std::string data = "\xff\xff\xff\xff\x0f";  // length 2^32-1
  std::vector<v1::TrainerEvent> events;
  size_t consumed = 0;
  EXPECT_EQ(ParseDelimitedEvents(data, &events, &consumed).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace pendulum::io
