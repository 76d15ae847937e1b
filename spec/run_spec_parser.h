#pragma once
// Turns user-written RunSpec text (YAML or JSON; JSON is parsed as YAML) into a
// pendulum.v1.RunSpec, mapping fields one-to-one by their proto names, and
// applies `path=value` overrides. Errors are INVALID_ARGUMENT and name the full
// field path (e.g. "spec.optimizer.lr: expected a number, got 'fast'"); every
// problem found is reported, not just the first. Pure functions, thread-safe.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"

namespace pendulum::spec {

// Largest spec text accepted (bytes). Nesting is capped at 32 levels and the
// number of YAML values at 200k (aliases cannot blow it up).
inline constexpr size_t kMaxSpecBytes = 1 << 20;

// Parses YAML/JSON text into a RunSpec. Unknown fields, wrong types and
// malformed text are errors naming the field path. Does not range-check
// (ValidateRunSpec does).
absl::StatusOr<v1::RunSpec> ParseRunSpec(std::string_view text);

// Applies one override "a.b.c=value" (value parsed as a YAML scalar or flow
// sequence/map, e.g. "model.hidden=[256,256]").
absl::Status ApplyOverride(std::string_view assignment, v1::RunSpec* spec);

// Parse + every override in order + ValidateRunSpec: what the server does at
// submission and pendulum-train does stand-alone. All problems (parse errors,
// then each failing override, then validation) in one INVALID_ARGUMENT.
absl::StatusOr<v1::RunSpec> LoadRunSpec(std::string_view text,
                                        const std::vector<std::string>& overrides);

// Renders a RunSpec as YAML (the inverse of ParseRunSpec), for `pendulum show`.
std::string RunSpecToYaml(const v1::RunSpec& spec);

}  // namespace pendulum::spec
