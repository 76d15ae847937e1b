// Preemption over simulated pools: which runs are stopped for a waiting
// higher-priority run, that nothing of equal or higher priority is touched,
// and that a run already waiting for its victims preempts nothing more.
#include "gtest/gtest.h"
#include "server/scheduler/placer.h"
#include "tests/unit/server/scheduler/pool_builder.h"

namespace pendulum::scheduler {
namespace {

using testing::Gpus;
using testing::Queued;
using testing::RunningOnGpus;
using testing::RunningOnSlot;
using testing::Slots;

std::vector<int64_t> PreemptedIds(const PlacementPlan& plan) {
  std::vector<int64_t> ids;
  for (const auto& p : plan.preemptions) ids.push_back(p.run_id);
  return ids;
}

TEST(PreemptionTest, HighPriorityRunStopsTheLowestPriorityRun) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 2, {});
  a.running = {RunningOnGpus(10, {0}, -5), RunningOnGpus(11, {1}, 0)};
  s.workers = {a};
  s.queue = {Queued(1, 1, 50)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.placements.empty());  // it starts once run 10 has checkpointed
  ASSERT_EQ(plan.preemptions.size(), 1u);
  EXPECT_EQ(plan.preemptions[0].run_id, 10);
  EXPECT_EQ(plan.preemptions[0].worker_id, "a");
  EXPECT_EQ(plan.preemptions[0].for_run_id, 1);
  EXPECT_EQ(plan.preemptions[0].reason, "preempted by run 1 (priority 50 > -5)");
  EXPECT_EQ(plan.queue_reasons.at(1), "preempting lower priority run 10 on a to checkpoint and stop");
}

TEST(PreemptionTest, AmongEqualPrioritiesTheNewestRunIsStopped) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 2, {});
  a.running = {RunningOnGpus(10, {0}, 0), RunningOnGpus(11, {1}, 0)};
  s.workers = {a};
  s.queue = {Queued(1, 1, 50)};
  EXPECT_EQ(PreemptedIds(Placer::Place(s)), (std::vector<int64_t>{11}));
}

TEST(PreemptionTest, NeverStopsARunOfEqualOrHigherPriority) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 2, {});
  a.running = {RunningOnGpus(10, {0}, 50), RunningOnGpus(11, {1}, 80)};
  s.workers = {a};
  s.queue = {Queued(1, 1, 50)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.preemptions.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "needs 1 GPU, largest free block is 0");
}

TEST(PreemptionTest, RunsThatAreStartingOrCancellingAreNotPreempted) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 1, {});
  RunningRun starting = RunningOnGpus(10, {0}, 0);
  starting.preemptible = false;
  a.running = {starting};
  s.workers = {a};
  s.queue = {Queued(1, 1, 50)};
  EXPECT_TRUE(Placer::Place(s).preemptions.empty());
}

TEST(PreemptionTest, GangPreemptsOnTheWorkerNeedingFewestVictims) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 4, {});
  a.running = {RunningOnGpus(10, {0}, 0), RunningOnGpus(11, {1}, 0), RunningOnGpus(12, {2}, 0),
               RunningOnGpus(13, {3}, 0)};
  WorkerCapacity b = Gpus("b", 4, {});
  b.running = {RunningOnGpus(20, {0, 1}, 0), RunningOnGpus(21, {2, 3}, 0)};
  s.workers = {a, b};
  s.queue = {Queued(1, 4, 10)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_EQ(PreemptedIds(plan), (std::vector<int64_t>{21, 20}));
  for (const auto& p : plan.preemptions) EXPECT_EQ(p.worker_id, "b");
  EXPECT_EQ(plan.queue_reasons.at(1), "preempting lower priority runs 21, 20 on b to checkpoint and stop");
}

TEST(PreemptionTest, OnlyAsManyVictimsAsNeededWhenSomeGpusAreFree) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 4, {3});
  a.running = {RunningOnGpus(10, {0}, 0), RunningOnGpus(11, {1}, 0), RunningOnGpus(12, {2}, 0)};
  s.workers = {a};
  s.queue = {Queued(1, 2, 10)};
  EXPECT_EQ(PreemptedIds(Placer::Place(s)), (std::vector<int64_t>{12}));
}

TEST(PreemptionTest, WaitsForItsStoppingRunsWithoutPreemptingMore) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 2, {1});
  RunningRun stopping = RunningOnGpus(10, {0}, 0);
  stopping.preemptible = false;
  stopping.stopping = true;
  stopping.stopping_for = 1;
  a.running = {stopping};
  WorkerCapacity b = Gpus("b", 2, {});
  b.running = {RunningOnGpus(20, {0}, 0), RunningOnGpus(21, {1}, 0)};
  s.workers = {a, b};
  s.queue = {Queued(1, 2, 10), Queued(2, 1, 0)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.preemptions.empty());
  EXPECT_TRUE(plan.placements.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "waiting for preempted run 10 on a to checkpoint and stop");
  // The GPU already free on `a` is kept for run 1.
  EXPECT_EQ(plan.queue_reasons.at(2), "waiting behind higher priority run 1 (a is reserved for it)");
}

TEST(PreemptionTest, CpuSlotRunsArePreemptedForCpuRuns) {
  PoolSnapshot s;
  WorkerCapacity w = Slots("cpu", 1, 0);
  w.running = {RunningOnSlot(10, 0)};
  s.workers = {w};
  s.queue = {Queued(1, 0, 10)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_EQ(PreemptedIds(plan), (std::vector<int64_t>{10}));
  EXPECT_EQ(plan.queue_reasons.at(1), "preempting lower priority run 10 on cpu to checkpoint and stop");
}

TEST(PreemptionTest, SlotRunsAreNotStoppedToFreeGpus) {
  PoolSnapshot s;
  WorkerCapacity w = Gpus("a", 1, {});
  w.total_slots = 1;
  w.running = {RunningOnSlot(10, 0), RunningOnGpus(11, {0}, 50)};
  s.workers = {w};
  s.queue = {Queued(1, 1, 10)};
  EXPECT_TRUE(Placer::Place(s).preemptions.empty());
}

TEST(PreemptionTest, FractionalRunsOnOneGpuAreStoppedTogetherForAWholeGpu) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 1, {});
  a.shared_gpus = {{0, 0.5}};
  RunningRun f1 = RunningOnGpus(10, {0}, 0);
  f1.request.gpus = 0;
  f1.request.gpu_fraction = 0.25;
  RunningRun f2 = f1;
  f2.run_id = 11;
  a.running = {f1, f2};
  s.workers = {a};
  s.queue = {Queued(1, 1, 10)};
  EXPECT_EQ(PreemptedIds(Placer::Place(s)), (std::vector<int64_t>{11, 10}));
}

TEST(PreemptionTest, QuotaStillApplies) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 1, {});
  a.running = {RunningOnGpus(10, {0}, 0, "bob")};
  s.workers = {a, Gpus("b", 1, {})};
  s.workers[1].running = {RunningOnGpus(11, {0}, 0, "alice")};
  s.users["alice"].gpu_quota = 1;
  s.queue = {Queued(1, 1, 10, 1, "alice")};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.preemptions.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "user quota reached (1/1 GPUs)");
}

TEST(PreemptionTest, CanBeTurnedOff) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 1, {});
  a.running = {RunningOnGpus(10, {0}, 0)};
  s.workers = {a};
  s.queue = {Queued(1, 1, 50)};
  PlacerOptions options;
  options.preemption = false;
  EXPECT_TRUE(Placer::Place(s, options).preemptions.empty());
}

TEST(PreemptionTest, DrainingWorkersAreNotPreemptedFor) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 1, {});
  a.running = {RunningOnGpus(10, {0}, 0)};
  a.schedulable = false;
  a.draining = true;
  s.workers = {a};
  s.queue = {Queued(1, 1, 50)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.preemptions.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "no worker online (all workers are draining)");
}

TEST(PreemptionTest, TwoWaitingRunsDoNotPickTheSameVictim) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 2, {});
  a.running = {RunningOnGpus(10, {0}, 0), RunningOnGpus(11, {1}, 0)};
  s.workers = {a};
  s.queue = {Queued(1, 1, 50, 1), Queued(2, 1, 50, 2)};
  // Run 1 preempts one; `a` is then promised to it, so run 2 waits for the
  // next pass instead of racing run 1 for what its victim frees.
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.preemptions.size(), 1u);
  EXPECT_EQ(plan.preemptions[0].for_run_id, 1);
  EXPECT_EQ(plan.queue_reasons.at(2), "waiting behind run 1 (a is reserved for it)");
  // Next pass: run 1 was placed on the freed GPU; run 2 preempts the other run.
  RunningRun stopped = s.workers[0].running[1];  // run 11 (newest) was the victim
  ASSERT_EQ(stopped.run_id, plan.preemptions[0].run_id);
  s.workers[0].running = {s.workers[0].running[0], RunningOnGpus(1, stopped.gpu_indices, 50, "alice")};
  s.queue = {Queued(2, 1, 50, 2)};
  plan = Placer::Place(s);
  ASSERT_EQ(plan.preemptions.size(), 1u);
  EXPECT_EQ(plan.preemptions[0].run_id, 10);
  EXPECT_EQ(plan.preemptions[0].for_run_id, 2);
}

}  // namespace
}  // namespace pendulum::scheduler
