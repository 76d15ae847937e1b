#pragma once
// Turns a SubmitRunRequest into the validated RunSpecs to create: parse
// spec_text (or take spec), apply overrides, expand the sweep (cartesian
// product of the axes, at most kMaxSweepRuns), and validate every spec.
// Errors are INVALID_ARGUMENT naming the request field (spec_text, overrides[i],
// sweep[i]) or the spec field. Pure; thread-safe.

#include <vector>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_service.pb.h"

namespace pendulum::api {

inline constexpr int kMaxSweepRuns = 1000;

absl::StatusOr<std::vector<pendulum::v1::RunSpec>> ExpandSubmission(
    const pendulum::v1::SubmitRunRequest& request);

}  // namespace pendulum::api
