#pragma once
// Builders for simulated pools in scheduler tests: queued runs, workers with
// GPUs or CPU slots, and runs already running on them.

#include <string>
#include <vector>

#include "server/scheduler/pool_snapshot.h"

namespace pendulum::scheduler::testing {

inline QueuedRun Queued(int64_t id, uint32_t gpus, int32_t priority = 0, int64_t submit_ms = 0,
                        const std::string& owner = "alice") {
  QueuedRun r;
  r.run_id = id;
  r.owner = owner;
  r.request.gpus = gpus;
  r.priority = priority;
  r.submit_unix_ms = submit_ms == 0 ? id : submit_ms;
  return r;
}

inline QueuedRun Fraction(int64_t id, double fraction, const std::string& owner = "alice") {
  QueuedRun r = Queued(id, 0, 0, 0, owner);
  r.request.gpu_fraction = fraction;
  return r;
}

inline WorkerCapacity Gpus(const std::string& id, uint32_t total, std::vector<uint32_t> free) {
  WorkerCapacity w;
  w.worker_id = id;
  w.total_gpus = total;
  w.free_gpu_indices = std::move(free);
  return w;
}

inline WorkerCapacity Slots(const std::string& id, uint32_t total, uint32_t free) {
  WorkerCapacity w;
  w.worker_id = id;
  w.total_slots = total;
  w.free_slots = free;
  return w;
}

// A run holding `gpu_indices` (whole GPUs) on `w`; they must not be in its free list.
inline RunningRun RunningOnGpus(int64_t id, std::vector<uint32_t> gpu_indices, int32_t priority,
                                const std::string& owner = "bob") {
  RunningRun r;
  r.run_id = id;
  r.owner = owner;
  r.priority = priority;
  r.request.gpus = gpu_indices.size();
  r.gpu_indices = std::move(gpu_indices);
  return r;
}

inline RunningRun RunningOnSlot(int64_t id, int32_t priority, const std::string& owner = "bob") {
  RunningRun r;
  r.run_id = id;
  r.owner = owner;
  r.priority = priority;
  return r;
}

}  // namespace pendulum::scheduler::testing
