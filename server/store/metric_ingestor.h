#pragma once
// MetricIngestor: the ingestion hot path. ONE writer thread owns a dedicated
// write connection; callers hand it RunEvents batches through a queue. The
// writer drains the queue, writes everything it took in one transaction
// (prepared statements, INSERT OR IGNORE on (run, attempt, seq, …)), commits,
// and only then reports the highest contiguous seq stored for each
// (run, attempt) — the ack the server may send to the worker ("ack only after
// commit", the no-loss rule).
//
// Where events land: Scalars → metrics (one row per value); OscillationStats
// → layer_oscillation (one row per layer × statistic); WeightSnapshot →
// weight_snapshots (the serialized message); CheckpointSaved →
// run_checkpoints, Started / Finished / Scalars also update the run's progress,
// points_emitted and last checkpoint (only for the run's current attempt);
// LogLine is acknowledged but not stored. Events of an attempt that a later
// attempt superseded (MarkSuperseded) are stored already marked superseded.
//
// Threads: Submit/MarkSuperseded/Flush are thread-safe and may be called from
// any thread (gRPC reactors included). Callbacks run on the writer thread,
// after the commit: keep them short and never call back into the ingestor
// synchronously (Flush/MarkSuperseded from a callback would deadlock).
// The destructor stops accepting work, drains the queue (every queued batch is
// written and its callback run), and joins the thread.

#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "pendulum/v1/worker_service.pb.h"
#include "server/store/database.h"

namespace pendulum::store {

struct IngestorOptions {
  // Most events written in one transaction (more queued batches wait for the
  // next one). Each transaction holds SQLite's write lock, delaying other
  // writers (SubmitRun, state changes) for its duration; store_bench shows no
  // throughput gain beyond ~500 events. Default 2000.
  int max_events_per_transaction = 2000;
  // Submit() blocks while more than this many events wait in the queue
  // (backpressure instead of unbounded memory). Default 200000.
  int max_queued_events = 200000;
  // Scalar names whose value becomes the run's progress.last_loss, first match wins.
  std::vector<std::string> loss_names = {"loss", "train/loss", "train_loss"};
};

// The outcome of one submitted batch, after its transaction committed.
struct IngestAck {
  int64_t run_id = 0;
  uint32_t attempt = 0;
  // Every event of this (run, attempt) with seq <= acked_seq is durably
  // stored (across restarts). 0 = nothing contiguous from seq 1 yet.
  uint64_t acked_seq = 0;
  // Metric rows (scalar values) newly inserted by this batch (duplicates not counted).
  int64_t points_inserted = 0;
  // Events in the batch that were already stored (resends).
  int64_t duplicate_events = 0;
  // Highest step seen in this batch's Scalars (-1 if none), for WatchRun.
  int64_t max_step = -1;
  // Present when the batch contained the attempt's Finished event.
  bool finished = false;
  pendulum::v1::Finished finished_event;
  // CheckpointSaved events in this batch (the server may fetch/track them).
  std::vector<pendulum::v1::CheckpointSaved> checkpoints;
};

using IngestCallback = absl::AnyInvocable<void(absl::StatusOr<IngestAck>)>;

class MetricIngestor {
 public:
  // Opens the writer connection and starts the writer thread. `db` and `clock`
  // must outlive the ingestor.
  static absl::StatusOr<std::unique_ptr<MetricIngestor>> Start(Database* db, const Clock* clock,
                                                               IngestorOptions options = {});
  ~MetricIngestor();
  MetricIngestor(const MetricIngestor&) = delete;
  MetricIngestor& operator=(const MetricIngestor&) = delete;

  // Queues a batch; `done` runs on the writer thread after the commit with the
  // ack, or with an error (INVALID_ARGUMENT: run_id/attempt/seq 0; NOT_FOUND:
  // unknown run; UNAVAILABLE: database busy or the ingestor is shutting down).
  // On error nothing of the batch is acked; the worker resends. Blocks only
  // for backpressure (see max_queued_events). Events may be in any seq order
  // and may repeat earlier batches.
  void Submit(pendulum::v1::RunEvents batch, IngestCallback done);

  // Same, returning a future (convenient in tests and tools).
  std::future<absl::StatusOr<IngestAck>> Submit(pendulum::v1::RunEvents batch);

  // Attempt `new_attempt` of `run_id` resumed from a checkpoint at
  // `resume_step`: every point of earlier attempts with step > resume_step
  // (metrics, layer oscillation, snapshots) is marked superseded — kept, and
  // hidden from default queries — and so are such points arriving later from
  // those attempts. resume_step = -1 supersedes all earlier points (fresh
  // restart). Runs on the writer thread (ordered with ingestion); blocks until
  // committed. Idempotent.
  absl::Status MarkSuperseded(int64_t run_id, uint32_t new_attempt, int64_t resume_step);

  // Blocks until everything submitted before the call is committed (and its
  // callbacks ran).
  void Flush();

  // Events queued, not yet committed (for the ingestion-lag gauge).
  int64_t QueuedEvents() const;

 private:
  struct Work;
  class Writer;
  MetricIngestor(Database* db, const Clock* clock, IngestorOptions options,
                 std::unique_ptr<Writer> writer);
  void Enqueue(std::unique_ptr<Work> work);
  void Loop();

  const IngestorOptions options_;
  const Clock* clock_;
  std::unique_ptr<Writer> writer_;  // used only by the writer thread

  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Work>> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_events_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;  // last member: started after, joined before the rest
};

}  // namespace pendulum::store
