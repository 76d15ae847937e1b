#pragma once
// RunStore: runs, sweeps and the run_events history in SQLite.
// Every state change goes through one transaction that also appends a
// run_events row with its reason, so `pendulum show` can explain a run's life.
//
// Threads: thread-safe (stateless; each call borrows a pooled connection from
// the Database). Writes take SQLite's write lock (BEGIN IMMEDIATE) and wait up
// to busy_timeout for it. Errors: NOT_FOUND (no such run), FAILED_PRECONDITION
// (transition not allowed from the run's current state or attempt),
// INVALID_ARGUMENT (bad filter / page token), UNAVAILABLE (database busy).
// Returns pendulum::v1::Run messages by value; the caller owns them.

#include <cstdint>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "pendulum/v1/run.pb.h"
#include "pendulum/v1/run_spec.pb.h"
#include "server/store/database.h"

namespace pendulum::store {

// True for SUCCEEDED, FAILED, CANCELLED.
bool IsTerminal(pendulum::v1::RunState state);
// "QUEUED", "RUNNING", … (the enum name).
std::string RunStateName(pendulum::v1::RunState state);

// ListRuns filter and page, mirroring ListRunsRequest.
struct RunFilter {
  std::vector<pendulum::v1::RunState> states;  // empty = all
  std::string owner;                           // empty = all owners
  std::string name_contains;                   // substring of the name; empty = any
  int64_t sweep_id = 0;                        // 0 = any
  int page_size = 100;                         // 1..1000 (0 → 100)
  std::string page_token;                      // from RunPage::next_page_token
};

struct RunPage {
  std::vector<pendulum::v1::Run> runs;  // newest (highest id) first
  std::string next_page_token;          // empty on the last page
};

// One row of a run's state history.
struct RunEvent {
  int64_t id = 0;
  int64_t run_id = 0;
  uint32_t attempt = 0;
  int64_t time_unix_ms = 0;
  pendulum::v1::RunState from_state = pendulum::v1::RUN_STATE_UNSPECIFIED;
  pendulum::v1::RunState to_state = pendulum::v1::RUN_STATE_UNSPECIFIED;
  std::string worker_id;
  std::string reason;
};

// A generic state change. Used for STARTING→RUNNING, →CANCELLING, and the
// terminal states (for placement and requeue use AssignRun / RequeueRun).
struct RunTransition {
  pendulum::v1::RunState to = pendulum::v1::RUN_STATE_UNSPECIFIED;
  // States the run may be in now; empty = any non-terminal state.
  std::vector<pendulum::v1::RunState> allowed_from;
  // When set, the run's current attempt must equal it (so a stale message
  // about an earlier attempt cannot change the current one).
  std::optional<uint32_t> expected_attempt;
  std::string reason;                // recorded in run_events (and exit_reason if terminal)
  std::optional<int32_t> exit_code;  // recorded when set
};

// Where a requeued run resumes: the newest checkpoint artifact (empty = fresh).
struct ResumePoint {
  std::string artifact_id;
  int64_t step = 0;
};

struct SweepResult {
  int64_t sweep_id = 0;                 // 0 when created without a sweep
  std::vector<pendulum::v1::Run> runs;  // in the order of the specs
};

class RunStore {
 public:
  // `db` and `clock` must outlive the RunStore.
  RunStore(Database* db, const Clock* clock);

  // Inserts a QUEUED run (attempt 0) owned by `owner` (an existing user).
  // name, priority and requested resources are taken from `spec`, which is
  // stored serialized. Records a run_events row "submitted".
  absl::StatusOr<pendulum::v1::Run> CreateRun(const pendulum::v1::RunSpec& spec,
                                              const std::string& owner);

  // Inserts all runs in ONE transaction (all or none). With as_sweep, a sweeps
  // row is created first and every run carries its id.
  absl::StatusOr<SweepResult> CreateRuns(const std::vector<pendulum::v1::RunSpec>& specs,
                                         const std::string& owner, bool as_sweep);

  // The run with its spec, progress, points_emitted and points_stored (for the
  // current attempt). NOT_FOUND if absent.
  absl::StatusOr<pendulum::v1::Run> GetRun(int64_t run_id);

  // Filtered, paged listing, newest first. page_token is opaque; a bad one is
  // INVALID_ARGUMENT. Specs are included.
  absl::StatusOr<RunPage> ListRuns(const RunFilter& filter);

  // Every run in one of `states` (oldest first), unpaged: for the scheduler's
  // start-up reconciliation (e.g. QUEUED, STARTING, RUNNING, CANCELLING).
  absl::StatusOr<std::vector<pendulum::v1::Run>> ListRunsInStates(
      const std::vector<pendulum::v1::RunState>& states);

  // Runs placed on `worker_id` and not yet terminal (STARTING, RUNNING,
  // CANCELLING): what to requeue when the worker's lease expires.
  absl::StatusOr<std::vector<pendulum::v1::Run>> ListActiveRunsOnWorker(const std::string& worker_id);

  // Count of runs per state name, e.g. {"QUEUED": 3}, for PoolStatus/metrics.
  absl::StatusOr<std::vector<std::pair<pendulum::v1::RunState, int64_t>>> CountRunsByState();

  // Applies `t` atomically: checks allowed_from / expected_attempt, sets the
  // state, started_unix_ms on the first RUNNING of an attempt, finished_unix_ms
  // (and exit_reason/exit_code) on a terminal state, clears queue_reason, and
  // appends to run_events. Returns the updated run.
  absl::StatusOr<pendulum::v1::Run> UpdateRunState(int64_t run_id, const RunTransition& t);

  // Placement: QUEUED → STARTING on `worker_id`; attempt becomes max(attempt, 1).
  // FAILED_PRECONDITION if the run is not QUEUED (e.g. cancelled meanwhile).
  absl::StatusOr<pendulum::v1::Run> AssignRun(int64_t run_id, const std::string& worker_id,
                                              const std::string& reason);

  // Back to the queue: STARTING/RUNNING/CANCELLING(-by-preemption) → QUEUED with
  // attempt+1, worker cleared, started_unix_ms reset. `expected_attempt` guards
  // against requeuing twice for one loss. The resume point (newest checkpoint
  // recorded via ArtifactStore) is kept; see GetResumePoint.
  absl::StatusOr<pendulum::v1::Run> RequeueRun(int64_t run_id, uint32_t expected_attempt,
                                               const std::string& reason);

  // The scheduler's explanation of why a QUEUED run waits (no history row;
  // it changes often). No-op for runs not QUEUED.
  absl::Status SetQueueReason(int64_t run_id, const std::string& reason);

  // Overwrites the progress of the current attempt (the MetricIngestor already
  // keeps step/epoch/last_loss/total_steps current from the trainer's events;
  // this is for callers that compute more, e.g. steps_per_second).
  // A stale attempt is ignored (returns OK).
  absl::Status RecordProgress(int64_t run_id, uint32_t attempt,
                              const pendulum::v1::RunProgress& progress);

  // Newest checkpoint to resume from (artifact id empty if none).
  absl::StatusOr<ResumePoint> GetResumePoint(int64_t run_id);

  // The run's state history, oldest first.
  absl::StatusOr<std::vector<RunEvent>> ListRunEvents(int64_t run_id);

 private:
  Database* db_;
  const Clock* clock_;
};

}  // namespace pendulum::store
