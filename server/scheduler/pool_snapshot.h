#pragma once
// Plain value types the scheduler works on: a snapshot of the queue and of the
// worker pool, and the placements chosen for it. No I/O, no locks; copied
// freely between the scheduler thread and whoever owns the live state.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pendulum::scheduler {

// A run waiting for a placement.
struct QueuedRun {
  int64_t run_id = 0;
  std::string owner;
  int32_t priority = 0;            // higher first
  int64_t submit_unix_ms = 0;      // FIFO within a priority
  uint32_t gpus = 0;               // 0 = one CPU slot
  std::map<std::string, std::string> node_labels;  // all must match
};

// One worker as the scheduler sees it. Only schedulable workers (online,
// connected, not draining) are offered placements, but all are listed so a
// queue reason can say "the only worker with 4 GPUs is draining".
struct WorkerCapacity {
  std::string worker_id;
  bool schedulable = true;
  uint32_t total_gpus = 0;
  std::vector<uint32_t> free_gpu_indices;  // ascending
  uint32_t total_slots = 0;
  uint32_t free_slots = 0;
  std::map<std::string, std::string> labels;
};

struct PoolSnapshot {
  std::vector<QueuedRun> queue;          // any order; the placer sorts
  std::vector<WorkerCapacity> workers;
};

struct Placement {
  int64_t run_id = 0;
  std::string worker_id;
  std::vector<uint32_t> gpu_indices;     // empty for a CPU-slot run
};

struct PlacementPlan {
  std::vector<Placement> placements;     // in queue order
  // Why each run that was not placed still waits, e.g.
  // "needs 2 GPUs, largest free block is 1".
  std::map<int64_t, std::string> queue_reasons;
};

}  // namespace pendulum::scheduler
