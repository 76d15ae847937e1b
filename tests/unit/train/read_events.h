#pragma once
// Test helper for trainer tests: every event a Trainer wrote to an events.pb
// file (length-delimited, docs/trainer_protocol.md). A file that does not
// parse whole fails the calling test.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "gtest/gtest.h"
#include "proto/io/event_stream.h"

namespace pendulum::train::testing {

inline std::vector<v1::TrainerEvent> ReadEvents(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<v1::TrainerEvent> events;
  size_t consumed = 0;
  EXPECT_TRUE(io::ParseDelimitedEvents(ss.str(), &events, &consumed).ok()) << path;
  return events;
}

}  // namespace pendulum::train::testing
