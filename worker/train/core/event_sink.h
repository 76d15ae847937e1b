#pragma once
// EventSink: how the training loop and TrainingMethods emit TrainerEvents
// (docs/trainer_protocol.md). The sink numbers events (seq 1, 2, ... without
// gaps), stamps the time, writes them to the daemon's pipe or DIR/events.pb,
// and counts scalar points for Finished.points_emitted. Methods never set seq.
// Called from the training thread only.

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "pendulum/v1/events.pb.h"

namespace pendulum::train {

class EventSink {
 public:
  virtual ~EventSink() = default;

  // One Scalars event; every value counts as one metric point. Names are
  // short snake_case ("loss", "eval_acc", "ofq/flip_rate"); methods prefix
  // theirs with the method name and a slash.
  virtual absl::Status EmitScalars(int64_t step, double epoch,
                                   const std::map<std::string, double>& values) = 0;
  // Per-layer oscillation statistics (OFQ).
  virtual absl::Status EmitOscillation(const v1::OscillationStats& stats) = 0;
  // Per-weight snapshot of one layer (OFQ).
  virtual absl::Status EmitSnapshot(const v1::WeightSnapshot& snapshot) = 0;
  // A log line that also goes into the run's event stream. level: info|warning|error.
  virtual absl::Status EmitLog(const std::string& level, const std::string& text) = 0;
  // A named result file written to the run's out dir (e.g. an analysis run's
  // tensors): ArtifactSaved with the file's size and sha256 filled in from
  // `path`. The daemon uploads it; `pendulum show` lists it and `pendulum
  // artifact` fetches it. name: unique per run, plain relative path segments.
  // Sinks that cannot carry artifacts say so (UNIMPLEMENTED).
  virtual absl::Status EmitArtifact(int64_t step, const std::string& name, const std::string& path,
                                    const std::string& kind) {
    return absl::UnimplementedError("this event sink does not carry artifacts");
  }
};

}  // namespace pendulum::train
