#pragma once
// MetricReader: reads metrics, oscillation statistics and weight snapshots
// back for QueryMetrics / QueryOscillation / WatchRun / `pendulum show`.
// Threads: thread-safe (stateless; each call borrows a pooled read connection).
// In WAL mode readers never block the MetricIngestor's writer and see the
// last committed state.
// Errors: INVALID_ARGUMENT (bad range / max_points, naming the field),
// NOT_FOUND (no such run), UNAVAILABLE (database busy).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pendulum/v1/run.pb.h"
#include "pendulum/v1/run_service.pb.h"
#include "server/store/database.h"

namespace pendulum::store {

// Stored points of one run attempt.
struct AttemptCounts {
  int64_t run_id = 0;
  uint32_t attempt = 0;
  uint64_t acked_seq = 0;        // highest contiguous seq stored
  int64_t points_stored = 0;     // scalar metric rows stored (superseded included)
  int64_t points_emitted = 0;    // from the attempt's Finished event (0 until then)
};

class MetricReader {
 public:
  // `db` must outlive the MetricReader.
  explicit MetricReader(Database* db);

  // Scalar series of request.run_id: one MetricSeries per name (sorted by
  // name), points ordered by step (then attempt). Superseded points are left
  // out unless include_superseded. step_max 0 = no limit. With max_points > 0,
  // each series longer than that is cut into max_points equal step ranges and
  // the last point of each non-empty range is kept. max_points ≤ 100000.
  absl::StatusOr<pendulum::v1::QueryMetricsResponse> QueryMetrics(
      const pendulum::v1::QueryMetricsRequest& request);

  // Per-layer statistic series (filtered by layer and stats; superseded points
  // left out), ordered by layer then step; and with include_snapshot, for each
  // layer the newest non-superseded WeightSnapshot at or before snapshot_step
  // (0 = newest).
  absl::StatusOr<pendulum::v1::QueryOscillationResponse> QueryOscillation(
      const pendulum::v1::QueryOscillationRequest& request);

  // Scalar names the run has stored, sorted.
  absl::StatusOr<std::vector<std::string>> MetricNames(int64_t run_id);

  // Counts for one attempt (zeros if nothing stored yet).
  absl::StatusOr<AttemptCounts> CountPoints(int64_t run_id, uint32_t attempt);
  // Counts for every attempt of the run, by attempt.
  absl::StatusOr<std::vector<AttemptCounts>> CountPointsPerAttempt(int64_t run_id);

 private:
  Database* db_;
};

}  // namespace pendulum::store
