#pragma once
// Chooses placements (and preemptions) for queued runs from a snapshot of
// queue, pool and users. Pure: no I/O, no locks, deterministic for a given
// snapshot. Every run left queued carries a readable reason.
//
// Policy, in order:
//  1. Priority classes: a higher priority is always considered first.
//  2. Within a priority, fair share between users: the user with the least
//     recent GPU-time (UserShare::recent_gpu_seconds, plus a charge for each
//     run placed earlier in this pass) goes next; each user's runs go FIFO
//     (submit time, then run id).
//  3. Per-user GPU quota (whole GPUs at once; fractions count as fractions).
//  4. Placement on one worker only (a multi-GPU run is a gang: all its GPUs on
//     one worker or nothing), matching all its labels and its GPU memory;
//     best fit (the least capacity left over; fractional runs are packed onto
//     GPUs already shared before a free GPU is opened). Draining or
//     disconnected workers get nothing.
//  5. A run that does not fit may preempt strictly lower-priority running
//     runs on one worker (fewest victims, lowest priority and newest first);
//     it then waits for them to checkpoint and stop, with that worker
//     reserved for it. Otherwise the first few blocked runs reserve the worker
//     they would fit best once it frees up, and runs of LOWER priority may not
//     take that worker ("waiting behind higher priority run N"); runs of the
//     same priority still backfill around a blocked big run.

#include "server/scheduler/pool_snapshot.h"

namespace pendulum::scheduler {

struct PlacerOptions {
  // Fair share: each placement in a pass is charged as this many GPU-seconds
  // per GPU, so one pass interleaves users instead of giving everything to the
  // least-used one. A CPU-slot run is charged as one GPU for fair share.
  double placement_charge_gpu_seconds = 3600;
  // How many blocked runs per pass may reserve a worker.
  int max_reservations = 8;
  // Whether to preempt, and how many waiting runs per pass may start
  // preemptions (each may stop several runs on one worker).
  bool preemption = true;
  int max_preempting_runs = 16;
};

class Placer {
 public:
  static PlacementPlan Place(const PoolSnapshot& snapshot, const PlacerOptions& options = {});
};

}  // namespace pendulum::scheduler
