// WorkerStore: registration, heartbeats, drain, and capacity from the runs table.
#include "server/store/worker_store.h"

#include "gtest/gtest.h"
#include "tests/unit/server/store/store_test_env.h"

namespace pendulum::store {
namespace {

using testing::StoreTest;

class WorkerStoreTest : public StoreTest {};

pendulum::v1::WorkerInfo Worker(const std::string& id, int gpus, int slots) {
  pendulum::v1::WorkerInfo w;
  w.set_id(id);
  w.set_hostname(id + ".lan");
  for (int i = 0; i < gpus; ++i) {
    auto* g = w.add_gpus();
    g->set_index(i);
    g->set_name("H100");
    g->set_memory_mb(81920);
  }
  w.set_slots(slots);
  (*w.mutable_labels())["gpu_type"] = "h100";
  w.set_version("0.1");
  return w;
}

TEST_F(WorkerStoreTest, RegisterHeartbeatDrainAndList) {
  WorkerStore workers(db_.get(), &clock_);
  ASSERT_OK_AND_ASSIGN(auto w, workers.UpsertWorker(Worker("w1", 4, 8)));
  EXPECT_EQ(w.state(), pendulum::v1::WORKER_ONLINE);
  EXPECT_EQ(w.free_gpus(), 4u);
  EXPECT_EQ(w.labels().at("gpu_type"), "h100");
  EXPECT_EQ(w.last_heartbeat_unix_ms(), clock_.NowUnixMillis());

  clock_.AdvanceMs(5000);
  ASSERT_OK(workers.Heartbeat("w1"));
  ASSERT_OK_AND_ASSIGN(w, workers.GetWorker("w1"));
  EXPECT_EQ(w.last_heartbeat_unix_ms(), clock_.NowUnixMillis());
  EXPECT_EQ(workers.Heartbeat("ghost").code(), absl::StatusCode::kNotFound);

  ASSERT_OK_AND_ASSIGN(w, workers.SetDraining("w1", true));
  EXPECT_EQ(w.state(), pendulum::v1::WORKER_DRAINING);
  // The drain flag survives re-registration.
  ASSERT_OK_AND_ASSIGN(w, workers.UpsertWorker(Worker("w1", 4, 8)));
  EXPECT_EQ(w.state(), pendulum::v1::WORKER_DRAINING);
  ASSERT_OK_AND_ASSIGN(w, workers.SetDraining("w1", false));
  EXPECT_EQ(w.state(), pendulum::v1::WORKER_ONLINE);

  ASSERT_OK(workers.SetWorkerState("w1", pendulum::v1::WORKER_LOST));
  ASSERT_OK_AND_ASSIGN(w, workers.GetWorker("w1"));
  EXPECT_EQ(w.state(), pendulum::v1::WORKER_LOST);
  ASSERT_OK(workers.Heartbeat("w1"));  // back
  ASSERT_OK_AND_ASSIGN(w, workers.GetWorker("w1"));
  EXPECT_EQ(w.state(), pendulum::v1::WORKER_ONLINE);
  EXPECT_EQ(workers.SetWorkerState("w1", pendulum::v1::WORKER_DRAINING).code(),
            absl::StatusCode::kInvalidArgument);

  ASSERT_OK(workers.UpsertWorker(Worker("w0", 0, 2)).status());
  ASSERT_OK_AND_ASSIGN(auto all, workers.ListWorkers());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id(), "w0");
  EXPECT_EQ(all[1].gpus_size(), 4);
}

TEST_F(WorkerStoreTest, FreeCapacityCountsActiveRuns) {
  WorkerStore workers(db_.get(), &clock_);
  ASSERT_OK(workers.UpsertWorker(Worker("w1", 4, 2)).status());
  RunStore runs(db_.get(), &clock_);
  ASSERT_OK(UserStore(db_.get(), &clock_).CreateUser("alice", pendulum::v1::USER).status());
  pendulum::v1::RunSpec two_gpu;
  two_gpu.set_name("big");
  two_gpu.mutable_resources()->set_gpus(2);
  pendulum::v1::RunSpec cpu;
  cpu.set_name("small");
  ASSERT_OK_AND_ASSIGN(auto a, runs.CreateRun(two_gpu, "alice"));
  ASSERT_OK_AND_ASSIGN(auto b, runs.CreateRun(cpu, "alice"));
  ASSERT_OK_AND_ASSIGN(auto c, runs.CreateRun(cpu, "alice"));
  ASSERT_OK(runs.AssignRun(a.id(), "w1", "fit").status());
  ASSERT_OK(runs.AssignRun(b.id(), "w1", "fit").status());
  ASSERT_OK(runs.AssignRun(c.id(), "w1", "fit").status());
  RunTransition done;
  done.to = pendulum::v1::SUCCEEDED;
  ASSERT_OK(runs.UpdateRunState(c.id(), done).status());  // finished: frees its slot
  ASSERT_OK_AND_ASSIGN(auto w, workers.GetWorker("w1"));
  EXPECT_EQ(w.free_gpus(), 2u);
  EXPECT_EQ(w.free_slots(), 1u);
  ASSERT_EQ(w.running_runs_size(), 2);
  EXPECT_EQ(w.running_runs(0), a.id());
  EXPECT_EQ(w.running_runs(1), b.id());
}

}  // namespace
}  // namespace pendulum::store
