// Fault injection with real processes (leveldb's fault tests applied to
// processes): SIGKILL the server mid-run and restart it on the same DB and
// port; SIGKILL a worker mid-run while a second worker waits. Either way the
// run finishes and every metric point is stored exactly once.
#include <signal.h>

#include "tests/integration/worker/worker_fixture.h"

namespace pendulum::cluster {
namespace {

auto Terminal() {
  return [](const v1::Run& run) { return IsTerminal(run.state()); };
}

// Without LibTorch: fake_trainer emits 3000 steps at ~4 ms each (12 s, long
// enough to outlast two restarts on a loaded machine); the server is
// SIGKILLed twice while it runs and restarted on the same DB and port.
TEST_F(WorkerClusterTest, ServerKilledTwiceWithFakeTrainerLosesAndDuplicatesNothing) {
  ASSERT_NE(StartWorker("w1", FakeTrainer(),
                        {{"FAKE_TRAINER_MODE", "ok"}, {"FAKE_TRAINER_STEPS", "3000"}, {"FAKE_TRAINER_STEP_US", "4000"}}),
            nullptr);
  auto run_id = client_->Submit(QuickSpec());
  ASSERT_TRUE(run_id.ok()) << run_id.status();
  const std::string where = absl::StrCat(" WHERE run_id=", *run_id, " AND attempt=1");
  for (int kill = 0; kill < 2; ++kill) {
    {
      Db db(config_.db);
      const int64_t want = 200 + 1500 * kill;
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      while (db.Count("SELECT COUNT(*) FROM metrics" + where) < want && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(10));
      }
    }
    auto before = client_->Get(*run_id);
    ASSERT_TRUE(before.ok());
    ASSERT_FALSE(IsTerminal(before->state())) << "run finished before kill " << kill;
    server_->process().Kill();
    absl::SleepFor(absl::Milliseconds(700));  // the trainer keeps emitting into the spool
    StartServer();
  }
  auto run = client_->WaitFor(*run_id, Terminal(), absl::Seconds(120));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state(), v1::SUCCEEDED) << run->exit_reason();
  EXPECT_EQ(run->attempt(), 1u);
  Db db(config_.db);
  EXPECT_EQ(db.Count("SELECT points_emitted FROM attempt_progress" + where), 6000);
  EXPECT_EQ(db.Count("SELECT COUNT(*) FROM metrics" + where), 6000);
  EXPECT_EQ(db.Query("SELECT MIN(seq) || '-' || MAX(seq) FROM metrics" + where)[0], "3-3002");
}

TEST_F(WorkerClusterTest, ServerKilledMidRunRestartsAndNoPointIsLostOrDuplicated) {
  RequireTrainer();
  ASSERT_NE(StartWorker("w1"), nullptr);
  auto run_id = client_->Submit(QuickSpec(), {"schedule.epochs=400"});
  ASSERT_TRUE(run_id.ok()) << run_id.status();
  const std::string where = absl::StrCat(" WHERE run_id=", *run_id);
  {
    Db db(config_.db);
    // Kill once points are flowing.
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (db.Count("SELECT COUNT(*) FROM metrics" + where) < 50 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_GE(db.Count("SELECT COUNT(*) FROM metrics" + where), 50) << "no points before the kill";
  }
  auto before = client_->Get(*run_id);
  ASSERT_TRUE(before.ok());
  ASSERT_FALSE(IsTerminal(before->state())) << "run finished before the kill; make it longer";
  server_->process().Kill();
  absl::SleepFor(absl::Seconds(1));  // the trainer keeps emitting into the worker's spool
  StartServer();                     // same DB, same port

  auto run = client_->WaitFor(*run_id, Terminal(), absl::Seconds(180));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state(), v1::SUCCEEDED) << run->exit_reason();
  EXPECT_EQ(run->attempt(), 1u) << "a server restart must not requeue a running run";
  Db db(config_.db);
  const std::string attempt = absl::StrCat(where, " AND attempt=", run->attempt());
  const int64_t emitted = db.Count("SELECT points_emitted FROM attempt_progress" + attempt);
  ASSERT_GT(emitted, 0);
  EXPECT_EQ(db.Count("SELECT COUNT(*) FROM metrics" + attempt), emitted);
  EXPECT_EQ(db.Count("SELECT COUNT(*) FROM (SELECT name_id, step, COUNT(*) c FROM metrics" + attempt +
                     " GROUP BY name_id, step HAVING c > 1)"),
            0);
}

TEST_F(WorkerClusterTest, WorkerKilledMidRunIsRequeuedAndResumesFromCheckpointElsewhere) {
  RequireTrainer();
  Process* w1 = StartWorker("w1");
  ASSERT_NE(w1, nullptr);
  auto run_id = client_->Submit(QuickSpec(), {"schedule.epochs=400", "checkpoint_every_steps=40"});
  ASSERT_TRUE(run_id.ok()) << run_id.status();
  // Only w1 exists, so the run lands there; w2 joins as the spare.
  auto running = client_->WaitFor(*run_id, [](const v1::Run& r) { return r.state() == v1::RUNNING; },
                                  absl::Seconds(60));
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(running->worker_id(), "w1");
  ASSERT_NE(StartWorker("w2"), nullptr);
  {
    Db db(config_.db);
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (db.Count(absl::StrCat("SELECT COUNT(*) FROM artifacts WHERE run_id=", *run_id)) < 1 &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_GE(db.Count(absl::StrCat("SELECT COUNT(*) FROM artifacts WHERE run_id=", *run_id)), 1)
        << "no checkpoint uploaded";
  }
  ASSERT_FALSE(IsTerminal(client_->Get(*run_id)->state())) << "run finished before the kill; make it longer";
  const absl::Time killed = absl::Now();
  w1->Kill();

  auto requeued = client_->WaitFor(
      *run_id, [](const v1::Run& r) { return r.attempt() >= 2 && r.worker_id() == "w2"; }, absl::Seconds(30));
  ASSERT_TRUE(requeued.ok()) << requeued.status();
  EXPECT_LE(absl::Now() - killed, absl::Seconds(15)) << "requeue took longer than the lease";

  auto run = client_->WaitFor(*run_id, Terminal(), absl::Seconds(180));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state(), v1::SUCCEEDED) << run->exit_reason();
  EXPECT_EQ(run->attempt(), 2u);
  Db db(config_.db);
  // Attempt 2 resumed: its first step continues after a checkpoint of attempt 1.
  const int64_t resumed_min = db.Count(absl::StrCat("SELECT MIN(step) FROM metrics WHERE run_id=", *run_id,
                                                    " AND attempt=2"));
  const int64_t ckpt_step = db.Count(absl::StrCat("SELECT MAX(step) FROM artifacts WHERE run_id=", *run_id,
                                                  " AND attempt=1"));
  EXPECT_GT(ckpt_step, 0);
  EXPECT_GT(resumed_min, ckpt_step) << "attempt 2 restarted at step " << resumed_min;
  EXPECT_LE(resumed_min, ckpt_step + 40);
  // Attempt 2's points arrived whole.
  const std::string a2 = absl::StrCat(" WHERE run_id=", *run_id, " AND attempt=2");
  const int64_t emitted = db.Count("SELECT points_emitted FROM attempt_progress" + a2);
  ASSERT_GT(emitted, 0);
  EXPECT_EQ(db.Count("SELECT COUNT(*) FROM metrics" + a2), emitted);
}

}  // namespace
}  // namespace pendulum::cluster
