// Placer over simulated pools: priorities, best fit and gang placement, CPU
// slots, labels and GPU memory, quotas, fair share, fractional packing, drain,
// and the queue reasons users see in `pendulum runs`. Preemption has its own
// file (preemption_test.cc).
#include "server/scheduler/placer.h"

#include "gtest/gtest.h"
#include "tests/unit/server/scheduler/pool_builder.h"

namespace pendulum::scheduler {
namespace {

using testing::Fraction;
using testing::Gpus;
using testing::Queued;
using testing::RunningOnGpus;
using testing::Slots;

std::vector<int64_t> PlacedIds(const PlacementPlan& plan) {
  std::vector<int64_t> ids;
  for (const auto& p : plan.placements) ids.push_back(p.run_id);
  return ids;
}

// ---- basics and priorities ----

TEST(PlacerTest, EmptyPoolSaysNoWorkerOnline) {
  PoolSnapshot s;
  s.queue = {Queued(1, 0), Queued(2, 1)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.placements.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "no worker online");
  EXPECT_EQ(plan.queue_reasons.at(2), "no worker online");
}

TEST(PlacerTest, HigherPriorityFirstThenSubmitOrder) {
  PoolSnapshot s;
  s.queue = {Queued(1, 0, 0, 100), Queued(2, 0, 5, 300), Queued(3, 0, 0, 50)};
  s.workers = {Slots("w", 2, 2)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_EQ(PlacedIds(plan), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(plan.queue_reasons.at(1), "needs a CPU slot, all 2 slots are busy");
  EXPECT_EQ(plan.queue_reasons.count(2), 0u);
}

TEST(PlacerTest, LowerPriorityWaitsBehindABlockedHigherPriorityRun) {
  // Run 1 (priority 10) needs all 4 GPUs of `a`; the 2 taken are held by a
  // run that cannot be preempted (still starting). Run 2 (priority 0) would
  // fit the 2 free GPUs but must not take what run 1 is waiting for.
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 4, {2, 3});
  RunningRun starting = RunningOnGpus(9, {0, 1}, 0);
  starting.preemptible = false;
  a.running = {starting};
  s.workers = {a};
  s.queue = {Queued(1, 4, 10), Queued(2, 1, 0)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.placements.empty());
  EXPECT_TRUE(plan.preemptions.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "needs 4 GPUs, largest free block is 2");
  EXPECT_EQ(plan.queue_reasons.at(2), "waiting behind higher priority run 1 (a is reserved for it)");

  // Another worker with room: the low-priority run goes there instead.
  s.workers.push_back(Gpus("b", 1, {0}));
  plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 1u);
  EXPECT_EQ(plan.placements[0].run_id, 2);
  EXPECT_EQ(plan.placements[0].worker_id, "b");
}

TEST(PlacerTest, ReservationsCanBeTurnedOff) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 4, {2, 3});
  RunningRun starting = RunningOnGpus(9, {0, 1}, 0);
  starting.preemptible = false;
  a.running = {starting};
  s.workers = {a};
  s.queue = {Queued(1, 4, 10), Queued(2, 1, 0)};
  PlacerOptions options;
  options.max_reservations = 0;
  EXPECT_EQ(PlacedIds(Placer::Place(s, options)), (std::vector<int64_t>{2}));
}

TEST(PlacerTest, SmallRunsOfTheSamePriorityBackfillBehindABlockedBigRun) {
  PoolSnapshot s;
  s.queue = {Queued(1, 4, 0, 1), Queued(2, 1, 0, 2)};
  s.workers = {Gpus("a", 4, {0, 1})};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_EQ(PlacedIds(plan), (std::vector<int64_t>{2}));
  EXPECT_EQ(plan.queue_reasons.at(1), "needs 4 GPUs, largest free block is 1");
}

// ---- best fit and gang placement ----

TEST(PlacerTest, BestFitPicksTheWorkerWithFewestGpusLeftOver) {
  PoolSnapshot s;
  s.queue = {Queued(1, 2)};
  s.workers = {Gpus("big", 8, {0, 1, 2, 3, 4, 5}), Gpus("small", 4, {2, 3})};
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 1u);
  EXPECT_EQ(plan.placements[0].worker_id, "small");
  EXPECT_EQ(plan.placements[0].gpu_indices, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(plan.placements[0].gpu_fraction, 0);
}

TEST(PlacerTest, PlacementsInOnePassConsumeCapacity) {
  PoolSnapshot s;
  s.queue = {Queued(1, 1), Queued(2, 1), Queued(3, 1)};
  s.workers = {Gpus("a", 2, {0, 1})};
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 2u);
  EXPECT_EQ(plan.placements[0].gpu_indices, (std::vector<uint32_t>{0}));
  EXPECT_EQ(plan.placements[1].gpu_indices, (std::vector<uint32_t>{1}));
  EXPECT_EQ(plan.queue_reasons.at(3), "needs 1 GPU, largest free block is 0");
}

TEST(PlacerTest, GangIsNeverSplitAcrossWorkers) {
  PoolSnapshot s;
  s.queue = {Queued(1, 4)};
  s.workers = {Gpus("a", 4, {0, 1}), Gpus("b", 4, {2, 3})};  // 4 free in total
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.placements.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "needs 4 GPUs, largest free block is 2");
}

TEST(PlacerTest, GangGetsAllItsGpusOnOneWorker) {
  PoolSnapshot s;
  s.queue = {Queued(1, 4)};
  s.workers = {Gpus("a", 4, {0, 1}), Gpus("b", 8, {1, 3, 5, 6, 7})};
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 1u);
  EXPECT_EQ(plan.placements[0].worker_id, "b");
  EXPECT_EQ(plan.placements[0].gpu_indices, (std::vector<uint32_t>{1, 3, 5, 6}));
}

TEST(PlacerTest, RunBiggerThanAnyWorkerSaysSo) {
  PoolSnapshot s;
  s.queue = {Queued(1, 8)};
  s.workers = {Gpus("a", 4, {0, 1, 2, 3})};
  EXPECT_EQ(Placer::Place(s).queue_reasons.at(1), "needs 8 GPUs, no online worker has more than 4");
}

TEST(PlacerTest, CpuRunTakesOneSlotAndNeverAGpu) {
  PoolSnapshot s;
  s.queue = {Queued(1, 0)};
  s.workers = {Gpus("gpu-only", 2, {0, 1}), Slots("cpu", 4, 4)};
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 1u);
  EXPECT_EQ(plan.placements[0].worker_id, "cpu");
  EXPECT_TRUE(plan.placements[0].gpu_indices.empty());
}

TEST(PlacerTest, GpuWorkersWithoutSlotsCannotTakeCpuRuns) {
  PoolSnapshot s;
  s.queue = {Queued(1, 0)};
  s.workers = {Gpus("gpu-only", 2, {0, 1})};
  EXPECT_EQ(Placer::Place(s).queue_reasons.at(1), "needs a CPU slot, no online worker has CPU slots");
}

// ---- constraints ----

TEST(PlacerTest, NodeLabelsMustAllMatch) {
  PoolSnapshot s;
  QueuedRun r = Queued(1, 1);
  r.request.node_labels = {{"gpu", "a100"}};
  s.queue = {r};
  WorkerCapacity h100 = Gpus("h", 1, {0});
  h100.labels = {{"gpu", "h100"}};
  s.workers = {h100};
  EXPECT_EQ(Placer::Place(s).queue_reasons.at(1), "no worker has label gpu=a100");
  WorkerCapacity a100 = Gpus("x", 1, {0});
  a100.labels = {{"gpu", "a100"}, {"zone", "eu"}};
  s.workers.push_back(a100);
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 1u);
  EXPECT_EQ(plan.placements[0].worker_id, "x");
}

TEST(PlacerTest, LabelledWorkersAllDrainingIsSaid) {
  PoolSnapshot s;
  QueuedRun r = Queued(1, 1);
  r.request.node_labels = {{"gpu", "a100"}};
  s.queue = {r};
  WorkerCapacity a100 = Gpus("x", 1, {0});
  a100.labels = {{"gpu", "a100"}};
  a100.schedulable = false;
  a100.draining = true;
  s.workers = {a100, Gpus("other", 1, {0})};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.placements.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "every worker with label gpu=a100 is draining");
}

TEST(PlacerTest, GpuMemoryConstraintSkipsSmallGpus) {
  PoolSnapshot s;
  QueuedRun r = Queued(1, 1);
  r.request.gpu_memory_mb = 40000;
  s.queue = {r};
  WorkerCapacity small = Gpus("small", 2, {0, 1});
  small.gpu_memory_mb = 16000;
  s.workers = {small};
  EXPECT_EQ(Placer::Place(s).queue_reasons.at(1),
            "needs 1 GPU with 40000 MiB, largest online GPU has 16000 MiB");
  WorkerCapacity big = Gpus("big", 8, {0, 1, 2, 3, 4, 5, 6, 7});
  big.gpu_memory_mb = 81920;
  s.workers.push_back(big);
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 1u);
  EXPECT_EQ(plan.placements[0].worker_id, "big");  // despite small's better fit
}

// ---- drain ----

TEST(PlacerTest, DrainingWorkersTakeNothingUntilUndrained) {
  PoolSnapshot s;
  s.queue = {Queued(1, 0)};
  WorkerCapacity w = Slots("w", 2, 2);
  w.schedulable = false;
  w.draining = true;
  s.workers = {w};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.placements.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "no worker online (all workers are draining)");
  s.workers[0].schedulable = true;  // undrain
  s.workers[0].draining = false;
  EXPECT_EQ(PlacedIds(Placer::Place(s)), (std::vector<int64_t>{1}));
}

TEST(PlacerTest, DrainingWorkerIsSkippedForABusierOne) {
  PoolSnapshot s;
  s.queue = {Queued(1, 1)};
  WorkerCapacity drained = Gpus("a", 8, {0, 1, 2, 3, 4, 5, 6, 7});
  drained.schedulable = false;
  drained.draining = true;
  s.workers = {drained, Gpus("b", 8, {7})};
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 1u);
  EXPECT_EQ(plan.placements[0].worker_id, "b");
}

TEST(PlacerTest, DisconnectedWorkersTakeNothing) {
  PoolSnapshot s;
  s.queue = {Queued(1, 0)};
  WorkerCapacity w = Slots("w", 2, 2);
  w.schedulable = false;
  s.workers = {w};
  EXPECT_EQ(Placer::Place(s).queue_reasons.at(1), "no worker online (all workers draining or disconnected)");
}

// ---- quotas ----

TEST(PlacerTest, QuotaStopsOnlyThatUser) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 4, {2, 3});
  a.running = {RunningOnGpus(9, {0, 1}, 0, "alice")};
  s.workers = {a};
  s.users["alice"].gpu_quota = 2;
  s.queue = {Queued(1, 1, 0, 1, "alice"), Queued(2, 1, 0, 2, "bob")};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_EQ(PlacedIds(plan), (std::vector<int64_t>{2}));
  EXPECT_EQ(plan.queue_reasons.at(1), "user quota reached (2/2 GPUs)");
}

TEST(PlacerTest, QuotaCountsRunsPlacedInTheSamePass) {
  PoolSnapshot s;
  s.workers = {Gpus("a", 8, {0, 1, 2, 3, 4, 5, 6, 7})};
  s.users["alice"].gpu_quota = 3;
  s.queue = {Queued(1, 2, 0, 1, "alice"), Queued(2, 2, 0, 2, "alice"), Queued(3, 1, 0, 3, "alice")};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_EQ(PlacedIds(plan), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(plan.queue_reasons.at(2), "user quota: needs 2 GPUs, 2 of 3 GPUs in use");
}

TEST(PlacerTest, FractionsCountAsFractionsAndCpuRunsNotAtAll) {
  PoolSnapshot s;
  s.workers = {Gpus("a", 2, {0, 1}), Slots("cpu", 2, 2)};
  s.users["alice"].gpu_quota = 1;
  s.queue = {Fraction(1, 0.5), Fraction(2, 0.5), Fraction(3, 0.5), Queued(4, 0)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_EQ(PlacedIds(plan), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(plan.queue_reasons.at(3), "user quota reached (1/1 GPUs)");
}

// ---- fair share ----

TEST(PlacerTest, UserWithLessRecentGpuTimeGoesFirst) {
  PoolSnapshot s;
  s.workers = {Gpus("a", 1, {0})};
  s.users["alice"].recent_gpu_seconds = 7200;
  s.users["bob"].recent_gpu_seconds = 60;
  s.queue = {Queued(1, 1, 0, 1, "alice"), Queued(2, 1, 0, 5, "bob")};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_EQ(PlacedIds(plan), (std::vector<int64_t>{2}));  // despite alice submitting first
  EXPECT_EQ(plan.queue_reasons.at(1), "needs 1 GPU, largest free block is 0");
}

TEST(PlacerTest, OnePassInterleavesUsersInsteadOfServingTheFirstSubmitter) {
  PoolSnapshot s;
  s.workers = {Gpus("a", 4, {0, 1, 2, 3})};
  for (int64_t i = 1; i <= 4; ++i) s.queue.push_back(Queued(i, 1, 0, i, "alice"));
  for (int64_t i = 5; i <= 8; ++i) s.queue.push_back(Queued(i, 1, 0, i, "bob"));
  EXPECT_EQ(PlacedIds(Placer::Place(s)), (std::vector<int64_t>{1, 5, 2, 6}));
}

TEST(PlacerTest, FairShareWeighsGpusNotRuns) {
  // Alice's run took 4 GPUs; bob's two 1-GPU runs both go before her next one.
  PoolSnapshot s;
  s.workers = {Gpus("a", 10, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9})};
  s.queue = {Queued(1, 4, 0, 1, "alice"), Queued(2, 4, 0, 2, "alice"), Queued(3, 1, 0, 3, "bob"),
             Queued(4, 1, 0, 4, "bob")};
  EXPECT_EQ(PlacedIds(Placer::Place(s)), (std::vector<int64_t>{1, 3, 4, 2}));
}

TEST(PlacerTest, PriorityBeatsFairShare) {
  PoolSnapshot s;
  s.workers = {Gpus("a", 1, {0})};
  s.users["bob"].recent_gpu_seconds = 1e9;
  s.queue = {Queued(1, 1, 0, 1, "alice"), Queued(2, 1, 5, 2, "bob")};
  EXPECT_EQ(PlacedIds(Placer::Place(s)), (std::vector<int64_t>{2}));
}

// ---- fractional GPUs ----

TEST(PlacerTest, FourQuarterRunsShareOneGpuAndLeaveTheOtherWhole) {
  PoolSnapshot s;
  s.workers = {Gpus("a", 2, {0, 1})};
  s.queue = {Fraction(1, 0.25), Fraction(2, 0.25), Fraction(3, 0.25), Fraction(4, 0.25), Queued(5, 1)};
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 5u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(plan.placements[i].gpu_indices, (std::vector<uint32_t>{0})) << i;
    EXPECT_DOUBLE_EQ(plan.placements[i].gpu_fraction, 0.25);
  }
  EXPECT_EQ(plan.placements[4].run_id, 5);
  EXPECT_EQ(plan.placements[4].gpu_indices, (std::vector<uint32_t>{1}));
  EXPECT_EQ(plan.placements[4].gpu_fraction, 0);
}

TEST(PlacerTest, FractionPacksOntoTheFullestSharedGpuItFits) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 4, {3});
  a.shared_gpus = {{0, 0.5}, {1, 0.75}, {2, 0.9}};
  s.workers = {a};
  s.queue = {Fraction(1, 0.25)};
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 1u);
  EXPECT_EQ(plan.placements[0].gpu_indices, (std::vector<uint32_t>{1}));
}

TEST(PlacerTest, FractionsThatDoNotAddUpOpenAnotherGpuOrWait) {
  PoolSnapshot s;
  s.workers = {Gpus("a", 1, {0})};
  s.queue = {Fraction(1, 0.6), Fraction(2, 0.6)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_EQ(PlacedIds(plan), (std::vector<int64_t>{1}));
  EXPECT_EQ(plan.queue_reasons.at(2),
            "needs 0.6 of a GPU, every GPU is taken (most free share on a shared GPU: 0.4)");
  s.workers = {Gpus("a", 2, {0, 1})};
  plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 2u);
  EXPECT_EQ(plan.placements[1].gpu_indices, (std::vector<uint32_t>{1}));
}

TEST(PlacerTest, WholeGpuRunsNeverLandOnASharedGpu) {
  PoolSnapshot s;
  WorkerCapacity a = Gpus("a", 1, {});
  a.shared_gpus = {{0, 0.25}};
  s.workers = {a};
  s.queue = {Queued(1, 1)};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.placements.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "needs 1 GPU, largest free block is 0");
}

TEST(PlacerTest, SamePlanForTheSameSnapshot) {
  PoolSnapshot s;
  s.workers = {Gpus("b", 4, {0, 1, 2, 3}), Gpus("a", 4, {0, 1, 2, 3})};
  for (int64_t i = 1; i <= 12; ++i) {
    s.queue.push_back(Queued(i, static_cast<uint32_t>(i % 3), static_cast<int32_t>(i % 2), 100,
                             i % 2 ? "alice" : "bob"));
  }
  PlacementPlan first = Placer::Place(s);
  std::reverse(s.queue.begin(), s.queue.end());
  PlacementPlan second = Placer::Place(s);
  ASSERT_EQ(first.placements.size(), second.placements.size());
  for (size_t i = 0; i < first.placements.size(); ++i) {
    EXPECT_EQ(first.placements[i].run_id, second.placements[i].run_id);
    EXPECT_EQ(first.placements[i].worker_id, second.placements[i].worker_id);
    EXPECT_EQ(first.placements[i].gpu_indices, second.placements[i].gpu_indices);
  }
  EXPECT_EQ(first.queue_reasons, second.queue_reasons);
}

}  // namespace
}  // namespace pendulum::scheduler
