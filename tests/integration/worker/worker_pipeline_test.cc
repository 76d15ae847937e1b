// Integration: real pendulum-server, pendulum-worker and pendulum-train
// processes on loopback. A run succeeds with every metric point stored once;
// crashing trainers fail readably while the worker keeps serving; cancel works
// for queued and running runs and leaves no trainer process behind.
#include <signal.h>

#include <fstream>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "tests/integration/worker/worker_fixture.h"
#include "tests/support/child_command.h"

namespace pendulum::cluster {
namespace {

using ::testing::HasSubstr;

auto Terminal() {
  return [](const v1::Run& run) { return IsTerminal(run.state()); };
}

// The same pipeline without LibTorch: fake_trainer emits 2000 steps.
TEST_F(WorkerClusterTest, FakeTrainerRunStoresEveryEmittedPointOnce) {
  ASSERT_NE(StartWorker("w1", FakeTrainer(), {{"FAKE_TRAINER_MODE", "ok"}, {"FAKE_TRAINER_STEPS", "2000"}}),
            nullptr);
  auto run_id = client_->Submit(QuickSpec());
  ASSERT_TRUE(run_id.ok()) << run_id.status();
  auto run = client_->WaitFor(*run_id, Terminal(), absl::Seconds(60));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state(), v1::SUCCEEDED) << run->exit_reason();
  Db db(config_.db);
  const std::string where = absl::StrCat(" WHERE run_id=", *run_id, " AND attempt=1");
  EXPECT_EQ(db.Count("SELECT points_emitted FROM attempt_progress" + where), 4000);
  EXPECT_EQ(db.Count("SELECT COUNT(*) FROM metrics" + where), 4000);
  EXPECT_EQ(db.Count("SELECT COUNT(DISTINCT seq) FROM metrics" + where), 2000);
  EXPECT_EQ(db.Query("SELECT MIN(seq) || '-' || MAX(seq) FROM metrics" + where)[0], "3-2002");
}

// A worker whose trainer binary stops being executable after start-up (a
// reinstall half done) must not fail the runs it is given: the attempt ends
// QUEUED, the server requeues the run with a reason naming the worker and
// holds that worker back, and a healthy worker runs it to success.
TEST_F(WorkerClusterTest, TrainerGoneOnOneWorkerRequeuesTheRunToAHealthyOne) {
  const fs::path broken = dir_ / "broken-bin" / "pendulum-train";
  fs::create_directories(broken.parent_path());
  fs::copy_file(FakeTrainer(), broken);
  ASSERT_NE(StartWorker("w1", broken.string(), {{"FAKE_TRAINER_STEPS", "50"}}), nullptr);
  fs::permissions(broken, fs::perms::owner_read | fs::perms::owner_write);  // no longer executable
  auto run_id = client_->Submit(QuickSpec());
  ASSERT_TRUE(run_id.ok()) << run_id.status();
  auto held = client_->WaitFor(
      *run_id,
      [](const v1::Run& r) {
        return r.attempt() >= 2 && r.state() == v1::QUEUED && absl::StrContains(r.queue_reason(), "held back");
      },
      absl::Seconds(30));
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_THAT(held->queue_reason(), HasSubstr("worker 'w1' is held back: could not start a trainer"));
  EXPECT_THAT(held->queue_reason(), HasSubstr("not executable: " + broken.string()));
  // `pendulum workers` says so in its NOTE column.
  const testing::CommandResult workers = testing::RunChildCommand(
      {(BuildDir() / "client" / "pendulum").string(), "--server", server_->address(), "workers"},
      {{"PENDULUM_TOKEN", user_token_}});
  ASSERT_EQ(workers.exit_code, 0) << workers.err;
  EXPECT_THAT(workers.out, HasSubstr("NOTE"));
  EXPECT_THAT(workers.out, HasSubstr("could not start a trainer (program not executable: " + broken.string()));

  ASSERT_NE(StartWorker("w2", FakeTrainer(), {{"FAKE_TRAINER_STEPS", "50"}}), nullptr);
  auto run = client_->WaitFor(*run_id, Terminal(), absl::Seconds(60));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state(), v1::SUCCEEDED) << run->exit_reason();
  EXPECT_EQ(run->worker_id(), "w2");
  // 2 unless w2 took over 30 s to connect and w1 was offered the run again.
  EXPECT_GE(run->attempt(), 2u);
}

TEST_F(WorkerClusterTest, WorkerRefusesToStartWithoutAnExecutableTrainer) {
  const fs::path missing = dir_ / "no-such-trainer";
  WorkerConfig wc;
  wc.server = server_->address();
  wc.token = worker_token_;
  wc.id = "w1";
  wc.work_dir = dir_ / "work-w1";
  wc.trainer = missing.string();
  auto worker = cluster::StartWorker(wc, dir_ / "w1.log");
  ASSERT_TRUE(worker.ok()) << worker.status();
  auto said = (*worker)->WaitForLog("--trainer " + missing.string() + " is not an executable file",
                                    absl::Seconds(30));
  EXPECT_TRUE(said.ok()) << said.status();
}

// A named artifact (what an analysis run writes) goes trainer → ArtifactSaved
// event → worker upload → server artifact dir + SQLite, is listed by GetRun and
// comes back byte for byte through RunService.FetchArtifact.
TEST_F(WorkerClusterTest, NamedArtifactReachesTheServerAndIsFetchedBack) {
  const std::string name = "interaction_basis/layer1.pt";
  const int size = 1500000;  // two upload chunks
  ASSERT_NE(StartWorker("w1", FakeTrainer(),
                        {{"FAKE_TRAINER_MODE", "ok"}, {"FAKE_TRAINER_STEPS", "5"},
                         {"FAKE_TRAINER_ARTIFACT", name}, {"FAKE_TRAINER_ARTIFACT_BYTES", std::to_string(size)}}),
            nullptr);
  auto run_id = client_->Submit(QuickSpec());
  ASSERT_TRUE(run_id.ok()) << run_id.status();
  auto run = client_->WaitFor(*run_id, Terminal(), absl::Seconds(60));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state(), v1::SUCCEEDED) << run->exit_reason();
  ASSERT_EQ(run->artifacts_size(), 1) << run->DebugString();
  EXPECT_EQ(run->artifacts(0).name(), name);
  EXPECT_EQ(run->artifacts(0).kind(), "analysis");
  EXPECT_EQ(run->artifacts(0).size(), size);
  Db db(config_.db);
  EXPECT_EQ(db.Query(absl::StrCat("SELECT name FROM artifacts WHERE run_id=", *run_id))[0], name);

  v1::FetchArtifactRequest request;
  request.set_run_id(*run_id);
  request.set_name(name);
  auto ctx = client_->Context();
  auto reader = client_->stub()->FetchArtifact(ctx.get(), request);
  v1::ArtifactData data;
  std::string bytes;
  while (reader->Read(&data)) bytes += data.data();
  grpc::Status s = reader->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(bytes.size(), static_cast<size_t>(size));
  for (int i = 0; i < size; i += 9973) {
    ASSERT_EQ(bytes[i], static_cast<char>(i * 31 + 7)) << "byte " << i;
  }
}

TEST_F(WorkerClusterTest, RunSucceedsAndSqliteHoldsEveryEmittedPointOnce) {
  RequireTrainer();
  ASSERT_NE(StartWorker("w1"), nullptr);
  auto run_id = client_->Submit(QuickSpec(), {"schedule.epochs=3"});
  ASSERT_TRUE(run_id.ok()) << run_id.status();
  auto run = client_->WaitFor(*run_id, Terminal(), absl::Seconds(120));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state(), v1::SUCCEEDED) << run->exit_reason();
  EXPECT_EQ(run->worker_id(), "w1");

  Db db(config_.db);
  const std::string where = absl::StrCat(" WHERE run_id=", *run_id, " AND attempt=", run->attempt());
  const int64_t emitted = db.Count("SELECT points_emitted FROM attempt_progress" + where);
  const int64_t stored = db.Count("SELECT COUNT(*) FROM metrics" + where);
  // The trainer's own count (Finished.points_emitted) against the rows.
  ASSERT_GT(emitted, 0) << "server recorded no Finished.points_emitted";
  EXPECT_EQ(stored, emitted);
  EXPECT_EQ(run->points_stored(), run->points_emitted());
  // One row per (seq, name); per name, one point per step (no duplicate steps).
  EXPECT_EQ(db.Count("SELECT COUNT(*) FROM (SELECT name_id, step, COUNT(*) c FROM metrics" + where +
                     " GROUP BY name_id, step HAVING c > 1)"),
            0);
  // Spool delivered and cleaned up: nothing left for this attempt on disk.
  EXPECT_FALSE(fs::exists(dir_ / "work-w1" / "attempts" / absl::StrCat("run-", *run_id, "-attempt-1")));
}

TEST_F(WorkerClusterTest, CrashingTrainersFailReadablyAndTheWorkerKeepsServing) {
  RequireTrainer();
  // The real trainer behind a wrapper that aborts for runs named deliberate-abort
  // (the binary spec.pb contains the tag text), so one worker sees both.
  const fs::path wrapper = dir_ / "trainer-wrapper.sh";
  {
    std::ofstream out(wrapper);
    out << "#!/bin/sh\n"
           "spec=''; prev=''\n"
           "for a in \"$@\"; do [ \"$prev\" = --spec ] && spec=\"$a\"; prev=\"$a\"; done\n"
           "if grep -a -q deliberate-abort \"$spec\"; then echo 'wrapper: deliberate abort' >&2; kill -ABRT $$; fi\n"
           "exec " << TrainerBinary() << " \"$@\"\n";
  }
  fs::permissions(wrapper, fs::perms::owner_all);
  ASSERT_NE(StartWorker("w1", wrapper.string()), nullptr);

  // (1) Bad dataset path: the trainer exits 3 (data error).
  auto bad_data = client_->Submit(ReadFile(testing::SourceDir() / "examples" / "mlp_fashion_mnist.yaml"),
                                  {"data.path=/nonexistent/fmnist"});
  ASSERT_TRUE(bad_data.ok()) << bad_data.status();
  auto run = client_->WaitFor(*bad_data, Terminal(), absl::Seconds(60));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state(), v1::FAILED);
  EXPECT_EQ(run->exit_code(), 3);
  EXPECT_THAT(run->exit_reason(), HasSubstr("exit code 3"));
  EXPECT_THAT(run->exit_reason(), HasSubstr("/nonexistent/fmnist"));

  // (2) A deliberate abort: SIGABRT, reported as 128+6 with the stderr tail.
  auto aborted = client_->Submit(QuickSpec(), {"name=deliberate-abort"});
  ASSERT_TRUE(aborted.ok()) << aborted.status();
  run = client_->WaitFor(*aborted, Terminal(), absl::Seconds(60));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state(), v1::FAILED);
  EXPECT_EQ(run->exit_code(), 128 + SIGABRT);
  EXPECT_THAT(run->exit_reason(), HasSubstr("signal 6"));
  EXPECT_THAT(run->exit_reason(), HasSubstr("wrapper: deliberate abort"));

  // (3) The same worker still runs the next run to success.
  auto good = client_->Submit(QuickSpec(), {"schedule.epochs=1"});
  ASSERT_TRUE(good.ok()) << good.status();
  run = client_->WaitFor(*good, Terminal(), absl::Seconds(120));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state(), v1::SUCCEEDED) << run->exit_reason();
  EXPECT_EQ(run->worker_id(), "w1");
}

TEST_F(WorkerClusterTest, CancelWorksForQueuedAndRunningRuns) {
  RequireTrainer();
  ASSERT_NE(StartWorker("w1"), nullptr);  // one slot
  auto long_run = client_->Submit(QuickSpec(), {"schedule.epochs=100000"});
  ASSERT_TRUE(long_run.ok()) << long_run.status();
  auto running = client_->WaitFor(
      *long_run, [](const v1::Run& r) { return r.state() == v1::RUNNING || IsTerminal(r.state()); },
      absl::Seconds(60));
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(running->state(), v1::RUNNING);

  // The only slot is busy, so this one waits in the queue; cancel it there.
  auto queued = client_->Submit(QuickSpec());
  ASSERT_TRUE(queued.ok()) << queued.status();
  auto q = client_->Get(*queued);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->state(), v1::QUEUED);
  ASSERT_TRUE(client_->Cancel(*queued).ok());
  auto cancelled_queued = client_->WaitFor(*queued, Terminal(), absl::Seconds(10));
  ASSERT_TRUE(cancelled_queued.ok()) << cancelled_queued.status();
  EXPECT_EQ(cancelled_queued->state(), v1::CANCELLED);

  // Cancel the running one: its trainer process must be gone afterwards.
  pid_t trainer_pid = 0;
  std::ifstream(dir_ / "work-w1" / "attempts" / absl::StrCat("run-", *long_run, "-attempt-1") / "trainer.pid") >>
      trainer_pid;
  ASSERT_GT(trainer_pid, 0);
  ASSERT_EQ(::kill(trainer_pid, 0), 0) << "trainer not running before the cancel";
  ASSERT_TRUE(client_->Cancel(*long_run).ok());
  auto cancelled = client_->WaitFor(*long_run, Terminal(), absl::Seconds(30));
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::CANCELLED) << cancelled->exit_reason();
  EXPECT_NE(::kill(trainer_pid, 0), 0) << "trainer pid " << trainer_pid << " survived the cancel";
  // The slot is free again: a new run gets placed and succeeds.
  auto next = client_->Submit(QuickSpec(), {"schedule.epochs=1"});
  ASSERT_TRUE(next.ok());
  auto done = client_->WaitFor(*next, Terminal(), absl::Seconds(120));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::SUCCEEDED) << done->exit_reason();
}

}  // namespace
}  // namespace pendulum::cluster
