#include "server/scheduler/scheduler.h"

namespace pendulum::scheduler {

Scheduler::Scheduler(SchedulerBackend* backend, const Clock* clock, PassObserver observer,
                     PlacerOptions placer_options)
    : backend_(backend), clock_(clock), observer_(std::move(observer)), placer_options_(placer_options) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable() || stopping_) return;
  pending_ = true;  // first pass picks up whatever was queued before start
  first_pending_at_ = clock_->Now();
  thread_ = std::thread([this] { Loop(); });
}

void Scheduler::Notify() {
  absl::MutexLock lock(&mu_);
  if (!pending_) {
    pending_ = true;
    first_pending_at_ = clock_->Now();
  }
}

void Scheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

int64_t Scheduler::passes() const {
  absl::MutexLock lock(&mu_);
  return passes_;
}

bool Scheduler::ShouldWake() const { return pending_ || stopping_; }

PlacementPlan Scheduler::RunPassForTest() { return RunPass(); }

PlacementPlan Scheduler::RunPass() {
  absl::Time since;
  {
    absl::MutexLock lock(&mu_);
    since = pending_ ? first_pending_at_ : clock_->Now();
    pending_ = false;
  }
  // The snapshot and the apply take the backend's lock; the placer runs with
  // no lock held, so submissions and worker messages are never blocked by it.
  PoolSnapshot snapshot = backend_->TakeSnapshot();
  PlacementPlan plan = Placer::Place(snapshot, placer_options_);
  backend_->ApplyPlan(plan);
  {
    absl::MutexLock lock(&mu_);
    ++passes_;
  }
  if (observer_) observer_(clock_->Now() - since, plan);
  return plan;
}

void Scheduler::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Scheduler::ShouldWake));
      if (stopping_) return;
    }
    RunPass();
  }
}

}  // namespace pendulum::scheduler
