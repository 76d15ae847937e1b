#pragma once
// EventWriter: the EventSink pendulum-train uses. Numbers every event (seq 1,
// 2, ... per attempt, no gaps), stamps time_unix_ms, frames it (proto/io/
// event_stream.h) and writes it to the daemon's pipe (--events-fd) or to
// DIR/events.pb (stand-alone). Counts scalar values for Finished.points_emitted.
// Training thread only. No LibTorch.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/train/core/event_sink.h"

namespace pendulum::train {

class EventWriter : public EventSink {
 public:
  // Writes to `fd`; takes ownership (closes it) when `owns_fd`.
  EventWriter(int fd, bool owns_fd) : fd_(fd), owns_fd_(owns_fd) {}
  ~EventWriter() override;
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Creates/truncates `path` (stand-alone mode).
  static absl::StatusOr<std::unique_ptr<EventWriter>> OpenFile(const std::string& path);

  absl::Status EmitStarted(int64_t first_step, int64_t total_steps, const std::string& device);
  absl::Status EmitCheckpoint(int64_t step, const std::string& path, int64_t bytes,
                              const std::string& sha256);
  // Finished.points_emitted is filled from the count so far.
  absl::Status EmitFinished(bool ok, const std::string& message, int64_t final_step);

  absl::Status EmitScalars(int64_t step, double epoch,
                           const std::map<std::string, double>& values) override;
  absl::Status EmitOscillation(const v1::OscillationStats& stats) override;
  absl::Status EmitSnapshot(const v1::WeightSnapshot& snapshot) override;
  absl::Status EmitLog(const std::string& level, const std::string& text) override;
  // Reads `path`'s size and sha256 (NOT_FOUND if it cannot be read).
  absl::Status EmitArtifact(int64_t step, const std::string& name, const std::string& path,
                            const std::string& kind) override;

  int64_t points_emitted() const { return points_emitted_; }
  uint64_t last_seq() const { return seq_; }

 private:
  absl::Status Write(v1::TrainerEvent* event);

  int fd_;
  bool owns_fd_;
  uint64_t seq_ = 0;
  int64_t points_emitted_ = 0;
};

}  // namespace pendulum::train
