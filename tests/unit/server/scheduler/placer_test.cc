// Placer over simulated pools: ordering, best fit, CPU slots, and the queue
// reasons users see in `pendulum runs`.
#include "server/scheduler/placer.h"

#include "gtest/gtest.h"

namespace pendulum::scheduler {
namespace {

QueuedRun Queued(int64_t id, uint32_t gpus, int32_t priority = 0, int64_t submit_ms = 0) {
  QueuedRun r;
  r.run_id = id;
  r.owner = "alice";
  r.gpus = gpus;
  r.priority = priority;
  r.submit_unix_ms = submit_ms == 0 ? id : submit_ms;
  return r;
}

WorkerCapacity Gpus(const std::string& id, uint32_t total, std::vector<uint32_t> free) {
  WorkerCapacity w;
  w.worker_id = id;
  w.total_gpus = total;
  w.free_gpu_indices = std::move(free);
  return w;
}

WorkerCapacity Slots(const std::string& id, uint32_t total, uint32_t free) {
  WorkerCapacity w;
  w.worker_id = id;
  w.total_slots = total;
  w.free_slots = free;
  return w;
}

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
  ASSERT_EQ(plan.placements.size(), 2u);
  EXPECT_EQ(plan.placements[0].run_id, 2);  // priority 5
  EXPECT_EQ(plan.placements[1].run_id, 3);  // earlier submit than run 1
  EXPECT_EQ(plan.queue_reasons.at(1), "needs a CPU slot, all 2 slots are busy");
  EXPECT_EQ(plan.queue_reasons.count(2), 0u);
}

TEST(PlacerTest, BestFitPicksTheWorkerWithFewestGpusLeftOver) {
  PoolSnapshot s;
  s.queue = {Queued(1, 2)};
  s.workers = {Gpus("big", 8, {0, 1, 2, 3, 4, 5}), Gpus("small", 4, {2, 3})};
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 1u);
  EXPECT_EQ(plan.placements[0].worker_id, "small");
  EXPECT_EQ(plan.placements[0].gpu_indices, (std::vector<uint32_t>{2, 3}));
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

TEST(PlacerTest, FragmentedPoolExplainsLargestFreeBlock) {
  PoolSnapshot s;
  s.queue = {Queued(1, 2)};
  s.workers = {Gpus("a", 4, {3}), Gpus("b", 4, {1})};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.placements.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "needs 2 GPUs, largest free block is 1");
}

TEST(PlacerTest, RunBiggerThanAnyWorkerSaysSo) {
  PoolSnapshot s;
  s.queue = {Queued(1, 8)};
  s.workers = {Gpus("a", 4, {0, 1, 2, 3})};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_EQ(plan.queue_reasons.at(1), "needs 8 GPUs, no online worker has more than 4");
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
  EXPECT_EQ(Placer::Place(s).queue_reasons.at(1),
            "needs a CPU slot, no online worker has CPU slots");
}

TEST(PlacerTest, SmallRunsBackfillBehindABlockedBigRun) {
  PoolSnapshot s;
  s.queue = {Queued(1, 4, 0, 1), Queued(2, 1, 0, 2)};
  s.workers = {Gpus("a", 4, {0, 1})};
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 1u);
  EXPECT_EQ(plan.placements[0].run_id, 2);
  EXPECT_EQ(plan.queue_reasons.at(1), "needs 4 GPUs, largest free block is 2");
}

TEST(PlacerTest, DrainingWorkersTakeNothing) {
  PoolSnapshot s;
  s.queue = {Queued(1, 0)};
  WorkerCapacity w = Slots("w", 2, 2);
  w.schedulable = false;
  s.workers = {w};
  PlacementPlan plan = Placer::Place(s);
  EXPECT_TRUE(plan.placements.empty());
  EXPECT_EQ(plan.queue_reasons.at(1), "no worker online (all workers draining or disconnected)");
}

TEST(PlacerTest, NodeLabelsMustAllMatch) {
  PoolSnapshot s;
  QueuedRun r = Queued(1, 1);
  r.node_labels = {{"gpu_type", "h100"}};
  s.queue = {r};
  WorkerCapacity a100 = Gpus("a", 1, {0});
  a100.labels = {{"gpu_type", "a100"}};
  s.workers = {a100};
  EXPECT_EQ(Placer::Place(s).queue_reasons.at(1), "no online worker has labels {gpu_type=h100}");
  WorkerCapacity h100 = Gpus("h", 1, {0});
  h100.labels = {{"gpu_type", "h100"}, {"zone", "x"}};
  s.workers.push_back(h100);
  PlacementPlan plan = Placer::Place(s);
  ASSERT_EQ(plan.placements.size(), 1u);
  EXPECT_EQ(plan.placements[0].worker_id, "h");
}

}  // namespace
}  // namespace pendulum::scheduler
