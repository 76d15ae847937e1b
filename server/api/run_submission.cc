#include "server/api/run_submission.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spec/run_spec_parser.h"
#include "spec/run_spec_validator.h"

namespace pendulum::api {
namespace {

absl::Status Prefixed(const absl::Status& status, const std::string& prefix) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

}  // namespace

absl::StatusOr<std::vector<pendulum::v1::RunSpec>> ExpandSubmission(
    const pendulum::v1::SubmitRunRequest& request) {
  if (request.has_spec() && !request.spec_text().empty()) {
    return absl::InvalidArgumentError("set either spec or spec_text, not both");
  }
  if (!request.has_spec() && request.spec_text().empty()) {
    return absl::InvalidArgumentError("spec_text: empty; send the run spec as YAML/JSON text or as spec");
  }
  pendulum::v1::RunSpec base;
  if (!request.spec_text().empty()) {
    absl::StatusOr<pendulum::v1::RunSpec> parsed = spec::ParseRunSpec(request.spec_text());
    if (!parsed.ok()) return parsed.status();
    base = *std::move(parsed);
  } else {
    base = request.spec();
  }
  for (int i = 0; i < request.overrides_size(); ++i) {
    absl::Status s = spec::ApplyOverride(request.overrides(i), &base);
    if (!s.ok()) return Prefixed(s, absl::StrCat("overrides[", i, "] '", request.overrides(i), "': "));
  }

  // Sweep size first, so a 10^6-run sweep is refused before any work.
  int64_t total = 1;
  for (int i = 0; i < request.sweep_size(); ++i) {
    const auto& axis = request.sweep(i);
    if (axis.path().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("sweep[", i, "].path: empty"));
    }
    if (axis.values().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sweep[", i, "].values: empty for path '", axis.path(), "'; give at least one value"));
    }
    total *= axis.values_size();
    if (total > kMaxSweepRuns) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sweep: the axes give more than ", kMaxSweepRuns, " runs; at most ", kMaxSweepRuns,
          " runs per submission"));
    }
  }

  std::vector<pendulum::v1::RunSpec> specs;
  specs.reserve(total);
  std::vector<int> index(request.sweep_size(), 0);
  for (int64_t n = 0; n < total; ++n) {
    pendulum::v1::RunSpec spec = base;
    std::vector<std::string> applied;
    for (int i = 0; i < request.sweep_size(); ++i) {
      const auto& axis = request.sweep(i);
      std::string assignment = absl::StrCat(axis.path(), "=", axis.values(index[i]));
      absl::Status s = spec::ApplyOverride(assignment, &spec);
      if (!s.ok()) {
        return Prefixed(s, absl::StrCat("sweep[", i, "].values[", index[i], "] '", assignment, "': "));
      }
      applied.push_back(std::move(assignment));
    }
    absl::Status valid = spec::ValidateRunSpec(spec);
    if (!valid.ok()) {
      if (applied.empty()) return valid;
      return Prefixed(valid, absl::StrCat("sweep run with ", absl::StrJoin(applied, ", "), ": "));
    }
    specs.push_back(std::move(spec));
    // Odometer increment over the axes, last axis fastest.
    for (int i = request.sweep_size() - 1; i >= 0; --i) {
      if (++index[i] < request.sweep(i).values_size()) break;
      index[i] = 0;
    }
  }
  return specs;
}

}  // namespace pendulum::api
