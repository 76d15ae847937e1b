#pragma once
// Chooses placements for queued runs from a snapshot of queue and pool.
// Pure: no I/O, no locks, deterministic. Every run left queued carries a
// readable reason. Policy (issue 3): order by priority (high first), then
// submit time, then run id; each run goes to the schedulable worker it fits
// best (fewest free GPUs, or CPU slots, left over; ties by worker id). A run
// that does not fit does not block smaller runs behind it (backfill); fair
// share, quotas and reservations for big runs are issue 7.

#include "server/scheduler/pool_snapshot.h"

namespace pendulum::scheduler {

class Placer {
 public:
  static PlacementPlan Place(const PoolSnapshot& snapshot);
};

}  // namespace pendulum::scheduler
