#pragma once
// Plain value types the scheduler works on: a snapshot of the queue, of the
// worker pool (with what runs on each worker) and of each user's quota and
// recent usage, and the plan chosen for it (placements, preemptions, reasons).
// No I/O, no locks; copied freely between the scheduler thread and whoever
// owns the live state.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pendulum::scheduler {

// What one run asks for. Exactly one of three shapes:
//  - gpus >= 1: that many whole GPUs, all on one worker (gang, all-or-nothing);
//  - gpus == 0, gpu_fraction in (0, 1): a share of one GPU, packed with other
//    fractional runs; the share is also the run's cap on that GPU's memory;
//  - gpus == 0, gpu_fraction == 0: one CPU slot.
struct ResourceRequest {
  uint32_t gpus = 0;
  double gpu_fraction = 0;
  uint64_t gpu_memory_mb = 0;                      // per GPU; 0 = any
  std::map<std::string, std::string> node_labels;  // all must match the worker's

  bool uses_slot() const { return gpus == 0 && gpu_fraction <= 0; }
  // GPUs counted against quotas and fair share: gpus, or the fraction. A CPU
  // slot counts 0 toward the GPU quota.
  double gpu_equivalent() const { return gpus > 0 ? gpus : gpu_fraction; }
};

// A run waiting for a placement.
struct QueuedRun {
  int64_t run_id = 0;
  std::string owner;
  int32_t priority = 0;            // higher first
  int64_t submit_unix_ms = 0;      // FIFO within a user and priority
  ResourceRequest request;
};

// A run that holds resources on a worker now.
struct RunningRun {
  int64_t run_id = 0;
  std::string owner;
  int32_t priority = 0;
  ResourceRequest request;
  std::vector<uint32_t> gpu_indices;  // GPUs it holds (one for a fractional run)
  // False while it starts, is being cancelled, or is already being preempted.
  bool preemptible = true;
  // Being preempted (asked to checkpoint and stop): its resources are about
  // to be freed and are promised to `stopping_for`.
  bool stopping = false;
  int64_t stopping_for = 0;
};

// One worker as the scheduler sees it. Only schedulable workers (online,
// connected, not draining) are offered placements, but all are listed so a
// queue reason can say "all matching workers are draining".
struct WorkerCapacity {
  std::string worker_id;
  bool schedulable = true;
  bool draining = false;                   // for reasons only; implies !schedulable
  // Why it is held back after it failed to start a trainer (binary missing,
  // disk, ...), "" when it is not; for reasons only; implies !schedulable.
  std::string held_back;
  uint32_t total_gpus = 0;
  std::vector<uint32_t> free_gpu_indices;  // wholly free GPUs, ascending
  // GPUs shared by fractional runs: index → fraction already used (0 < f <= 1).
  std::map<uint32_t, double> shared_gpus;
  uint64_t gpu_memory_mb = 0;              // per GPU; 0 = unknown (matches any)
  uint32_t total_slots = 0;
  uint32_t free_slots = 0;
  std::map<std::string, std::string> labels;
  std::vector<RunningRun> running;
};

// Per user: quota and recent usage (for fair share).
struct UserShare {
  double gpu_quota = 0;         // whole GPUs at once; 0 = unlimited
  double recent_gpu_seconds = 0;  // decayed GPU-time (see UsageLedger)
};

struct PoolSnapshot {
  std::vector<QueuedRun> queue;          // any order; the placer sorts
  std::vector<WorkerCapacity> workers;
  std::map<std::string, UserShare> users;  // users absent: no quota, no usage
};

struct Placement {
  int64_t run_id = 0;
  std::string worker_id;
  std::vector<uint32_t> gpu_indices;     // empty for a CPU-slot run
  // For a fractional run: its share of the GPU, to cap its GPU memory
  // (LibTorch's per-process memory fraction). 0 = whole GPUs or CPU.
  double gpu_fraction = 0;
};

// Every Preemption::reason starts with this. The worker echoes the reason of a
// Cancel in the status it reports, which lets the coordinator recognise a
// preempted run even after a server restart lost its in-memory state.
inline constexpr char kPreemptedReasonPrefix[] = "preempted by run ";

// Ask `run_id` (running on `worker_id`) to checkpoint and stop, then requeue
// it, so that `for_run_id` (higher priority) can take its resources.
struct Preemption {
  int64_t run_id = 0;
  std::string worker_id;
  int64_t for_run_id = 0;
  std::string reason;                    // e.g. "preempted by run 7 (priority 50 > 0)"
};

struct PlacementPlan {
  std::vector<Placement> placements;     // in decision order
  std::vector<Preemption> preemptions;
  // Why each run that was not placed still waits, e.g.
  // "needs 2 GPUs, largest free block is 1".
  std::map<int64_t, std::string> queue_reasons;
};

}  // namespace pendulum::scheduler
