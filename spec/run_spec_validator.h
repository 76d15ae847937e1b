#pragma once
// Range and consistency checks for a parsed RunSpec: the single definition of
// what a valid run is, used by the server at submission and by pendulum-train
// stand-alone. Reports every bad field as one INVALID_ARGUMENT whose message
// lists lines like "spec.optimizer.lr: got -0.1, must be > 0". Pure, thread-safe.

#include "absl/status/status.h"
#include "pendulum/v1/run_spec.pb.h"

namespace pendulum::spec {

absl::Status ValidateRunSpec(const v1::RunSpec& spec);

}  // namespace pendulum::spec
