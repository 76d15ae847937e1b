// The scheduler loop: event-driven (a pass per burst of notifications, none
// without one), latency measured on the injected clock, clean stop.
#include "server/scheduler/scheduler.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/unit/server/scheduler/simulated_clock.h"

namespace pendulum::scheduler {
namespace {

// A pool with one CPU slot per worker; ApplyPlan removes placed runs.
class FakeBackend : public SchedulerBackend {
 public:
  PoolSnapshot TakeSnapshot() override {
    absl::MutexLock lock(&mu_);
    if (clock_ != nullptr) clock_->Advance(absl::Milliseconds(3));  // the pass "takes" 3 ms
    return snapshot_;
  }
  void ApplyPlan(const PlacementPlan& plan) override {
    absl::MutexLock lock(&mu_);
    for (const auto& p : plan.placements) {
      placed_.push_back(p.run_id);
      for (auto it = snapshot_.queue.begin(); it != snapshot_.queue.end(); ++it) {
        if (it->run_id == p.run_id) {
          snapshot_.queue.erase(it);
          break;
        }
      }
      for (auto& w : snapshot_.workers) {
        if (w.worker_id == p.worker_id) --w.free_slots;
      }
    }
    reasons_ = plan.queue_reasons;
    applied_.fetch_add(1);
  }
  void Submit(int64_t id) {
    absl::MutexLock lock(&mu_);
    QueuedRun r;
    r.run_id = id;
    r.submit_unix_ms = id;
    snapshot_.queue.push_back(r);
  }
  void AddWorker(const std::string& id, uint32_t slots) {
    absl::MutexLock lock(&mu_);
    WorkerCapacity w;
    w.worker_id = id;
    w.total_slots = slots;
    w.free_slots = slots;
    snapshot_.workers.push_back(w);
  }
  std::vector<int64_t> placed() {
    absl::MutexLock lock(&mu_);
    return placed_;
  }
  std::map<int64_t, std::string> reasons() {
    absl::MutexLock lock(&mu_);
    return reasons_;
  }
  std::atomic<int> applied_{0};
  testing::SimulatedClock* clock_ = nullptr;

 private:
  absl::Mutex mu_;
  PoolSnapshot snapshot_;
  std::vector<int64_t> placed_;
  std::map<int64_t, std::string> reasons_;
};

void WaitFor(const std::function<bool()>& done) {
  for (int i = 0; i < 2000 && !done(); ++i) absl::SleepFor(absl::Milliseconds(1));
}

TEST(SchedulerTest, RunPassPlacesAndReportsReasons) {
  FakeBackend backend;
  testing::SimulatedClock clock;
  Scheduler scheduler(&backend, &clock);
  backend.Submit(1);
  scheduler.RunPassForTest();
  EXPECT_TRUE(backend.placed().empty());
  EXPECT_EQ(backend.reasons().at(1), "no worker online");
  backend.AddWorker("w", 1);
  scheduler.RunPassForTest();
  EXPECT_EQ(backend.placed(), std::vector<int64_t>{1});
  EXPECT_TRUE(backend.reasons().empty());
}

TEST(SchedulerTest, WorkerChangeNotificationPlacesWaitingRun) {
  FakeBackend backend;
  testing::SimulatedClock clock;
  Scheduler scheduler(&backend, &clock);
  backend.Submit(7);
  scheduler.Start();
  WaitFor([&] { return backend.applied_.load() >= 1; });
  EXPECT_EQ(backend.reasons().at(7), "no worker online");
  backend.AddWorker("w", 2);
  scheduler.Notify();
  WaitFor([&] { return !backend.placed().empty(); });
  EXPECT_EQ(backend.placed(), std::vector<int64_t>{7});
  scheduler.Stop();
}

TEST(SchedulerTest, NoPassWithoutANotification) {
  FakeBackend backend;
  testing::SimulatedClock clock;
  Scheduler scheduler(&backend, &clock);
  scheduler.Start();
  WaitFor([&] { return scheduler.passes() >= 1; });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(scheduler.passes(), 1);  // only the start-up pass: it does not poll
  scheduler.Notify();
  WaitFor([&] { return scheduler.passes() >= 2; });
  EXPECT_EQ(scheduler.passes(), 2);
  scheduler.Stop();
  scheduler.Stop();  // idempotent
}

TEST(SchedulerTest, ObserverSeesLatencyOnTheInjectedClock) {
  FakeBackend backend;
  testing::SimulatedClock clock;
  backend.clock_ = &clock;
  absl::Duration seen = absl::ZeroDuration();
  Scheduler scheduler(&backend, &clock,
                      [&](absl::Duration latency, const PlacementPlan&) { seen = latency; });
  scheduler.Notify();
  scheduler.RunPassForTest();
  EXPECT_EQ(seen, absl::Milliseconds(3));
}

}  // namespace
}  // namespace pendulum::scheduler
