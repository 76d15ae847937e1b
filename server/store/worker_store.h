#pragma once
// WorkerStore: the registered worker daemons (capacity, labels, state, drain
// flag, last heartbeat). Live connections are the server's business; this is
// what survives a restart and what ListWorkers shows.
// Threads: thread-safe (stateless; each call borrows a pooled connection).
// Errors: INVALID_ARGUMENT (empty id), NOT_FOUND, UNAVAILABLE.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "pendulum/v1/run_service.pb.h"
#include "server/store/database.h"

namespace pendulum::store {

class WorkerStore {
 public:
  // `db` and `clock` must outlive the WorkerStore.
  WorkerStore(Database* db, const Clock* clock);

  // Register: inserts or updates id, hostname, gpus, slots, labels and version
  // from `info`; state becomes ONLINE (DRAINING if the drain flag is set, which
  // survives re-registration); last heartbeat = now. Returns the stored worker.
  absl::StatusOr<pendulum::v1::WorkerInfo> UpsertWorker(const pendulum::v1::WorkerInfo& info);

  // Records a heartbeat now; `gpus` (utilisation/memory) replace the stored
  // ones when non-empty. A LOST/OFFLINE worker that heartbeats becomes ONLINE
  // (or DRAINING). NOT_FOUND if never registered.
  absl::Status Heartbeat(const std::string& worker_id,
                         const std::vector<pendulum::v1::GpuInfo>& gpus = {});

  // Sets ONLINE, LOST or OFFLINE (ONLINE shows as DRAINING while drained).
  absl::Status SetWorkerState(const std::string& worker_id, pendulum::v1::WorkerState state);

  // Sets/clears the drain flag; returns the worker.
  absl::StatusOr<pendulum::v1::WorkerInfo> SetDraining(const std::string& worker_id, bool draining);

  // One worker / all workers (by id), with running_runs filled from the runs
  // table, and free_gpus / free_slots = capacity minus the resources of its
  // STARTING/RUNNING/CANCELLING runs (a run with gpus == 0 and gpu_fraction == 0
  // takes one slot; gpu_fraction runs count as one GPU each here).
  absl::StatusOr<pendulum::v1::WorkerInfo> GetWorker(const std::string& worker_id);
  absl::StatusOr<std::vector<pendulum::v1::WorkerInfo>> ListWorkers();

 private:
  Database* db_;
  const Clock* clock_;
};

}  // namespace pendulum::store
