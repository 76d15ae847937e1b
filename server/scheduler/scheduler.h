#pragma once
// Scheduler: the event-driven loop around the pure Placer. Anyone calls
// Notify() after something that can change a placement (submit, run finished,
// worker joined/left/drained); one scheduler thread wakes, takes a snapshot
// from the backend, runs Placer::Place without holding any lock, and hands the
// plan back to the backend to apply. Notifications that arrive during a pass
// coalesce into one more pass. No polling.
// Threads: Notify() from any thread; Start()/Stop() from the owner. The
// backend's methods are called only on the scheduler thread (or on the
// caller's thread in RunPassForTest()).

#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/scheduler/placer.h"

namespace pendulum::scheduler {

class SchedulerBackend {
 public:
  virtual ~SchedulerBackend() = default;
  // Copies the queue and the pool (under the owner's own lock).
  virtual PoolSnapshot TakeSnapshot() = 0;
  // Applies a plan computed from the last snapshot. State may have moved on
  // while the placer ran, so the owner re-checks every placement (run still
  // queued, resources still free) and skips the stale ones; it also records
  // the queue reasons.
  virtual void ApplyPlan(const PlacementPlan& plan) = 0;
};

class Scheduler {
 public:
  // Called after each pass with how long the oldest pending notification
  // waited until its plan was applied (the scheduling latency).
  using PassObserver = std::function<void(absl::Duration latency, const PlacementPlan& plan)>;

  // `backend` and `clock` must outlive the Scheduler.
  Scheduler(SchedulerBackend* backend, const Clock* clock, PassObserver observer = nullptr,
            PlacerOptions placer_options = {});
  ~Scheduler();  // Stop()s.
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void Start();
  // Wakes the scheduler thread; cheap, never blocks on a pass.
  void Notify();
  // Finishes the pass in progress (if any) and joins the thread. Idempotent.
  void Stop();

  // Runs one pass synchronously on the calling thread (tests without a thread).
  PlacementPlan RunPassForTest();

  int64_t passes() const;

 private:
  void Loop();
  bool ShouldWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  PlacementPlan RunPass();

  SchedulerBackend* const backend_;
  const Clock* const clock_;
  const PassObserver observer_;
  const PlacerOptions placer_options_;

  mutable absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time first_pending_at_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t passes_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace pendulum::scheduler
