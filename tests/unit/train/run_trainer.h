#pragma once
// Test helper for trainer tests: runs pendulum-train's Trainer in this
// process, as RunTrainerMain would, with its events written to
// <dir>/events.pb (read them back with testing::ReadEvents). The caller's
// options say what differs (spec, resume/init path, threads, precision);
// out_dir is `dir` and human progress is off.
#include <filesystem>

#include "gtest/gtest.h"
#include "worker/train/core/event_writer.h"
#include "worker/train/core/trainer.h"

namespace pendulum::train::testing {

inline TrainResult RunTrainerInDir(const std::filesystem::path& dir, TrainerOptions options) {
  auto events = EventWriter::OpenFile((dir / "events.pb").string());
  EXPECT_TRUE(events.ok()) << events.status();
  if (!events.ok()) return TrainResult{events.status(), 1, 0};
  options.out_dir = dir.string();
  options.progress = false;
  Trainer trainer(options, events->get());
  return trainer.Run();
}

}  // namespace pendulum::train::testing
