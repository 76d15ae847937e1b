#pragma once
// Text and JSON renderings of runs and related messages for the CLI: state
// names, times, durations, progress, proto → JSON (proto field names, so the
// JSON keys match the spec paths). Pure functions, thread-safe.

#include <cstdint>
#include <string>

#include "google/protobuf/message.h"
#include "pendulum/v1/run.pb.h"

namespace pendulum::client {

// "RUNNING"; case-insensitive parse back ("running" → RUNNING), false if unknown.
std::string StateName(v1::RunState state);
bool ParseState(const std::string& text, v1::RunState* state);
bool IsTerminal(v1::RunState state);

// "2026-11-25 21:04:14 UTC", "-" for 0.
std::string FormatTime(int64_t unix_ms);
// "1h02m", "3m05s", "12s".
std::string FormatDuration(double seconds);
// "450/1000 (45.0%)" or "450" when the total is unknown, "-" before step 1.
std::string FormatProgress(const v1::RunProgress& p);
// A terminal bar line: "[#####.....] 45% step 450/1000 loss 0.4312 3.2 steps/s ETA 2m51s".
std::string ProgressBar(const v1::RunProgress& p, int width);

// Proto → JSON with proto field names and default-valued fields included.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace pendulum::client
