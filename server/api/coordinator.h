#pragma once
// Coordinator: the server's live state and every run/worker state transition.
// It keeps in memory what the scheduler needs (the queue, each worker's
// capacity, connection and allocations, the active runs) and persists every
// transition through the stores before anyone sees it. It is the scheduler's
// backend, the WorkerService's brain (hello reconciliation, leases, status,
// ingestion acks) and the source of WatchRun updates. No gRPC in here: worker
// streams and watchers are reached through the small interfaces below.
//
// Threads: thread-safe. Two mutexes, always taken in the order mu_ → fanout_mu_:
//  - mu_ guards the run/worker state. It is held across the short SQLite
//    transactions of a state change (so memory and database change together)
//    but never across network I/O (sends only queue) and never across a
//    blocking MetricIngestor call (MarkSuperseded/Flush): the writer thread
//    runs ingestion callbacks in order, and those must never wait for mu_.
//  - fanout_mu_: worker channels, watchers and ack bookkeeping. Ingestion
//    callbacks (on the store's writer thread) take only this one.
// Ownership: borrows stores, ingestor, metrics and clock (they outlive it).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "pendulum/v1/run_service.pb.h"
#include "pendulum/v1/worker_service.pb.h"
#include "server/auth/principal.h"
#include "server/metrics/server_metrics.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/usage_ledger.h"
#include "server/store/artifact_store.h"
#include "server/store/metric_ingestor.h"
#include "server/store/run_store.h"
#include "server/store/user_store.h"
#include "server/store/worker_store.h"

namespace pendulum::api {

// The outgoing half of one worker's Connect stream (implemented by its reactor).
class WorkerChannel {
 public:
  virtual ~WorkerChannel() = default;
  // Queues a message; never blocks. Dropped once the stream is finishing.
  virtual void Send(const pendulum::v1::ServerMessage& message) = 0;
  // Ends the stream with `status` (e.g. when a newer connection replaces it).
  virtual void Close(const absl::Status& status) = 0;
};

// A WatchRun subscriber (implemented by its reactor).
class RunWatcher {
 public:
  virtual ~RunWatcher() = default;
  // Queues an update; never blocks. `final` is true for the terminal state.
  virtual void Deliver(const pendulum::v1::RunUpdate& update, bool final) = 0;
  // Ends the watch with `status` (server shutdown).
  virtual void Close(const absl::Status& status) = 0;
};

struct CoordinatorOptions {
  absl::Duration lease = absl::Seconds(15);
  absl::Duration heartbeat = absl::Seconds(3);
  uint32_t cancel_grace_seconds = 10;
  // A preempted run gets this long after SIGTERM to write its checkpoint
  // before SIGKILL (its progress since the last checkpoint is lost if killed).
  uint32_t preempt_grace_seconds = 120;
  // Fair share: half-life of the decayed GPU-time per user.
  absl::Duration fair_share_half_life = absl::Hours(2);
  // A worker that could not start a trainer (it reports the attempt QUEUED)
  // gets no placements for this long, doubling while it keeps failing, up to
  // the maximum; a trainer it starts resets it.
  absl::Duration start_failure_holdback = absl::Seconds(30);
  absl::Duration start_failure_holdback_max = absl::Minutes(10);
};

class Coordinator : public scheduler::SchedulerBackend {
 public:
  struct Deps {
    store::RunStore* runs;
    store::WorkerStore* workers;
    store::ArtifactStore* artifacts;
    store::MetricIngestor* ingestor;
    metrics::ServerMetrics* metrics;  // may be null
    const Clock* clock;
    store::UserStore* users = nullptr;  // per-user GPU quotas; null = no quotas
  };
  Coordinator(Deps deps, CoordinatorOptions options);

  // Start-up: loads queued and active runs and known workers from the store.
  // Active runs stay as they are: their workers get one lease to reconnect.
  absl::Status Load();
  // The scheduler to notify on every change; set before serving.
  void set_scheduler(scheduler::Scheduler* scheduler) { scheduler_ = scheduler; }

  // ---- RunService ----
  absl::StatusOr<pendulum::v1::SubmitRunResponse> Submit(const auth::Principal& who,
                                                         const std::vector<pendulum::v1::RunSpec>& specs,
                                                         bool as_sweep);
  // NOT_FOUND for runs that do not exist or belong to someone else (non-admin).
  // The run with its stored artifacts (Run.artifacts) filled in.
  absl::StatusOr<pendulum::v1::Run> GetRun(const auth::Principal& who, int64_t run_id);
  // One stored artifact of a run `who` may see: by name, else by id (the
  // artifact must belong to the run). NOT_FOUND names what the run has.
  absl::StatusOr<store::Artifact> FindArtifact(const auth::Principal& who, int64_t run_id,
                                               const std::string& name, const std::string& id);
  absl::StatusOr<pendulum::v1::Run> CancelRun(const auth::Principal& who, int64_t run_id,
                                              const std::string& reason);
  absl::Status RequestCheckpoint(const auth::Principal& who, int64_t run_id);

  // WatchRun: registers `watcher` and returns the run's current state (the
  // first update). Unsubscribe before the watcher is destroyed.
  absl::StatusOr<pendulum::v1::Run> Subscribe(const auth::Principal& who, int64_t run_id,
                                              RunWatcher* watcher);
  void Unsubscribe(int64_t run_id, RunWatcher* watcher);

  // ---- AdminService ----
  absl::StatusOr<pendulum::v1::WorkerInfo> SetDraining(const std::string& worker_id, bool draining);
  pendulum::v1::PoolStatus PoolStatus();
  // Workers with live free capacity (the store's view plus connection state).
  absl::StatusOr<std::vector<pendulum::v1::WorkerInfo>> ListWorkers();

  // ---- WorkerService ----
  absl::StatusOr<pendulum::v1::RegisterResponse> Register(const pendulum::v1::RegisterRequest& request);
  // First message of a Connect stream: binds `channel` to the worker and
  // reconciles the runs the worker says it has with the runs the server
  // thinks it has. FAILED_PRECONDITION if the worker never registered.
  absl::Status OnHello(const pendulum::v1::Hello& hello, WorkerChannel* channel);
  void OnHeartbeat(const std::string& worker_id, const pendulum::v1::Heartbeat& heartbeat);
  // Hands the batch to the ingestor; the Ack goes out after the commit.
  void OnRunEvents(const std::string& worker_id, pendulum::v1::RunEvents events);
  void OnRunStatus(const std::string& worker_id, const pendulum::v1::RunStatus& status);
  // The stream of `channel` ended. Its runs stay until the lease expires.
  void OnDisconnect(const std::string& worker_id, WorkerChannel* channel);
  // Declares workers silent past the lease LOST and requeues their runs.
  // Called periodically by the server (and directly by tests with a fake clock).
  void CheckLeases();
  // Ends every worker stream and watch (server shutdown), so the gRPC server
  // does not wait its whole deadline for long-lived streams.
  void CloseAllStreams();
  // Recomputes the Prometheus gauges (runs by state, queue, workers, GPUs).
  void RefreshGauges();

  // ---- SchedulerBackend ----
  scheduler::PoolSnapshot TakeSnapshot() override;
  void ApplyPlan(const scheduler::PlacementPlan& plan) override;

 private:
  struct ActiveRun {
    int64_t run_id = 0;
    uint32_t attempt = 0;
    std::string owner;
    std::string worker_id;
    pendulum::v1::RunState state = pendulum::v1::STARTING;
    std::vector<uint32_t> gpu_indices;
    bool uses_slot = false;
    // Scheduling: what it holds, and whether it is being preempted (asked to
    // checkpoint and stop; requeued, not finished, when it stops).
    int32_t priority = 0;
    scheduler::ResourceRequest request;
    int64_t preempted_for = 0;
    std::string preempt_reason;
  };
  struct LiveWorker {
    pendulum::v1::WorkerInfo info;        // id, hostname, gpus, slots, labels, version
    bool draining = false;
    bool lost = false;
    WorkerChannel* channel = nullptr;     // mirror of channels_ (for "connected")
    absl::Time last_seen;
    std::vector<int64_t> gpu_owner;       // run id per GPU index, 0 = free
    std::vector<double> gpu_shared;       // per GPU index: fraction held by fractional runs
    uint32_t slots_used = 0;
    std::set<int64_t> runs;
    // Start failures in a row, and no placements before `held_until` (why:
    // `held_reason`).
    int start_failures = 0;
    absl::Time held_until = absl::InfinitePast();
    std::string held_reason;
  };

  void Notify();
  void Publish(const pendulum::v1::Run& run) ABSL_LOCKS_EXCLUDED(fanout_mu_);
  void SendTo(const std::string& worker_id, const pendulum::v1::ServerMessage& message)
      ABSL_LOCKS_EXCLUDED(fanout_mu_);
  void Allocate(LiveWorker& worker, ActiveRun& run, const scheduler::ResourceRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends a preempted run's worker a Cancel (the trainer checkpoints on
  // SIGTERM); OnRunStatus then requeues the run instead of finishing it.
  void PreemptLocked(const scheduler::Preemption& preemption) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(const ActiveRun& run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets the per-run Prometheus gauges (loss, accuracy, lr, per-layer
  // oscillation ratio) from a batch of an active attempt.
  void PublishRunGauges(const pendulum::v1::RunEvents& events, const std::string& owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves an active run back to the queue (attempt+1), or to CANCELLED when
  // it was being cancelled. Persists, releases resources, publishes.
  void RequeueLocked(int64_t run_id, const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(int64_t run_id, const pendulum::v1::Run& run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnqueueLocked(const pendulum::v1::Run& run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnIngested(const std::string& worker_id, const absl::StatusOr<store::IngestAck>& ack,
                  std::vector<pendulum::v1::TrainerEvent> scalars);
  absl::StatusOr<pendulum::v1::Run> GetVisibleRun(const auth::Principal& who, int64_t run_id);

  const Deps deps_;
  const CoordinatorOptions options_;
  scheduler::Scheduler* scheduler_ = nullptr;

  absl::Mutex mu_;
  std::map<int64_t, scheduler::QueuedRun> queue_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::string> queue_reasons_ ABSL_GUARDED_BY(mu_);  // last written
  std::map<int64_t, ActiveRun> active_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, LiveWorker> workers_ ABSL_GUARDED_BY(mu_);
  scheduler::UsageLedger usage_ ABSL_GUARDED_BY(mu_);  // fair share (decayed GPU-time)

  absl::Mutex fanout_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::map<std::string, WorkerChannel*> channels_ ABSL_GUARDED_BY(fanout_mu_);
  std::multimap<int64_t, RunWatcher*> watchers_ ABSL_GUARDED_BY(fanout_mu_);
  // Highest seq acked per (run, attempt): WatchRun gets each point once.
  std::map<std::pair<int64_t, uint32_t>, uint64_t> acked_ ABSL_GUARDED_BY(fanout_mu_);
  std::map<int64_t, std::string> run_owner_ ABSL_GUARDED_BY(fanout_mu_);  // for the loss gauge
};

}  // namespace pendulum::api
