// AttemptRunner with a real child process (fake_trainer, which speaks the
// trainer protocol without LibTorch): events reach the spool, exit statuses
// map to run states, cancel escalates, and the process is gone afterwards.
#include "worker/daemon/attempt_runner.h"

#include <signal.h>
#include <stdlib.h>

#include <fstream>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/support/test_paths.h"

namespace pendulum::daemon {
namespace {

class RecordingObserver : public AttemptObserver {
 public:
  void OnEventsSpooled() override {}
  void OnStatus(const v1::RunStatus& status) override {
    absl::MutexLock lock(&mu_);
    statuses_.push_back(status);
  }
  void OnFinished() override { finished_.Notify(); }
  bool WaitFinished(absl::Duration timeout) { return finished_.WaitForNotificationWithTimeout(timeout); }
  std::vector<v1::RunStatus> statuses() {
    absl::MutexLock lock(&mu_);
    return statuses_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::RunStatus> statuses_;
  absl::Notification finished_;
};

class AttemptRunnerTest : public ::testing::Test {
 protected:
  std::unique_ptr<AttemptRunner> Run(const std::string& mode, int steps = 10,
                                     std::vector<uint32_t> gpus = {}) {
    ::setenv("FAKE_TRAINER_MODE", mode.c_str(), 1);
    ::setenv("FAKE_TRAINER_STEPS", std::to_string(steps).c_str(), 1);
    v1::Assignment assignment;
    assignment.set_run_id(7);
    assignment.set_attempt(2);
    assignment.mutable_spec()->set_name("unit");
    for (uint32_t g : gpus) assignment.add_gpu_indices(g);
    AttemptOptions options;
    options.trainer_path = FAKE_TRAINER_PATH;
    options.dir = testing::MakeTestTempDir() / "run-7-attempt-2";
    auto runner = std::make_unique<AttemptRunner>(options, assignment, &artifacts_, &observer_);
    runner->Start();
    return runner;
  }

  ArtifactTransfer artifacts_{nullptr, ""};  // no artifacts in these tests
  RecordingObserver observer_;
};

TEST_F(AttemptRunnerTest, SuccessfulTrainerSpoolsEveryEventAndSucceeds) {
  auto runner = Run("ok", 25, {1, 3});
  ASSERT_TRUE(observer_.WaitFinished(absl::Seconds(30)));
  auto status = runner->final_status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state(), v1::SUCCEEDED) << status->message();
  EXPECT_EQ(status->exit_code(), 0);
  // Started + LogLine + 25 Scalars + Finished, seq 1..28, all in the spool.
  EXPECT_EQ(status->last_seq(), 28u);
  auto events = runner->spool()->Pending(0, 1000, 1 << 30);
  ASSERT_EQ(events.size(), 28u);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq(), i + 1);
  EXPECT_TRUE(events.front().has_started());
  EXPECT_EQ(events[1].log().text(), "CUDA_VISIBLE_DEVICES=1,3");
  ASSERT_TRUE(events.back().has_finished());
  EXPECT_EQ(events.back().finished().points_emitted(), 50);
  // The spec was handed over as binary RunSpec.
  std::ifstream spec(runner->dir() / "spec.pb", std::ios::binary);
  v1::RunSpec parsed;
  ASSERT_TRUE(parsed.ParseFromIstream(&spec));
  EXPECT_EQ(parsed.name(), "unit");
  // RUNNING was reported before the end; the final status was persisted.
  auto statuses = observer_.statuses();
  ASSERT_FALSE(statuses.empty());
  EXPECT_EQ(statuses.front().state(), v1::RUNNING);
  EXPECT_TRUE(std::filesystem::exists(runner->dir() / "status.pb"));
}

TEST_F(AttemptRunnerTest, CpuRunHidesAllGpus) {
  auto runner = Run("ok", 1);
  ASSERT_TRUE(observer_.WaitFinished(absl::Seconds(30)));
  auto events = runner->spool()->Pending(0, 1000, 1 << 30);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[1].log().text(), "CUDA_VISIBLE_DEVICES=");
}

TEST_F(AttemptRunnerTest, DataErrorFailsWithExitCodeReasonAndStderr) {
  auto runner = Run("exit3");
  ASSERT_TRUE(observer_.WaitFinished(absl::Seconds(30)));
  auto status = runner->final_status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state(), v1::FAILED);
  EXPECT_EQ(status->exit_code(), 3);
  EXPECT_NE(status->message().find("exit code 3 (data error"), std::string::npos) << status->message();
  EXPECT_NE(status->message().find("data error: /nonexistent/data.bin not found"), std::string::npos);
  EXPECT_NE(status->message().find("stderr"), std::string::npos);
  EXPECT_NE(status->message().find("fake_trainer: dataset file /nonexistent/data.bin not found"),
            std::string::npos);
}

TEST_F(AttemptRunnerTest, AbortIsFailedWith134AndKeepsEarlierEvents) {
  auto runner = Run("abort");
  ASSERT_TRUE(observer_.WaitFinished(absl::Seconds(30)));
  auto status = runner->final_status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state(), v1::FAILED);
  EXPECT_EQ(status->exit_code(), 128 + SIGABRT);
  EXPECT_NE(status->message().find("deliberate abort"), std::string::npos) << status->message();
  EXPECT_EQ(runner->spool()->last_seq(), 5u);  // Started, LogLine, 3 Scalars
}

TEST_F(AttemptRunnerTest, CancelStopsTrainerThatHonoursSigterm) {
  auto runner = Run("hang");
  for (int i = 0; i < 500 && runner->spool()->last_seq() < 2; ++i) absl::SleepFor(absl::Milliseconds(10));
  const pid_t pid = runner->trainer_pid();
  ASSERT_GT(pid, 0);
  runner->Cancel(absl::Seconds(10), "user asked");
  ASSERT_TRUE(observer_.WaitFinished(absl::Seconds(10)));
  auto status = runner->final_status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state(), v1::CANCELLED);
  EXPECT_EQ(status->exit_code(), 143);
  EXPECT_NE(status->message().find("user asked"), std::string::npos);
  EXPECT_NE(::kill(pid, 0), 0) << "trainer still exists";
  // Its Finished{terminated} event was spooled too.
  auto events = runner->spool()->Pending(0, 1000, 1 << 30);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().finished().message(), "terminated");
}

TEST_F(AttemptRunnerTest, CancelEscalatesToSigkillForTrainerIgnoringSigterm) {
  auto runner = Run("ignore_term");
  for (int i = 0; i < 500 && runner->spool()->last_seq() < 2; ++i) absl::SleepFor(absl::Milliseconds(10));
  const pid_t pid = runner->trainer_pid();
  ASSERT_GT(pid, 0);
  runner->Cancel(absl::Milliseconds(300), "preempted");
  ASSERT_TRUE(observer_.WaitFinished(absl::Seconds(10)));
  auto status = runner->final_status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state(), v1::CANCELLED);
  EXPECT_EQ(status->exit_code(), 137);
  EXPECT_NE(::kill(pid, 0), 0);
}

// A worker whose trainer binary is missing (a broken install, or a binary
// being replaced) must not fail the run: QUEUED asks the server to requeue it.
TEST_F(AttemptRunnerTest, MissingTrainerBinaryRequeuesTheRunNamingThePath) {
  v1::Assignment assignment;
  assignment.set_run_id(1);
  assignment.set_attempt(1);
  AttemptOptions options;
  options.trainer_path = "/nonexistent/pendulum-train";
  options.dir = testing::MakeTestTempDir() / "run-1-attempt-1";
  AttemptRunner runner(options, assignment, &artifacts_, &observer_);
  runner.Start();
  ASSERT_TRUE(observer_.WaitFinished(absl::Seconds(10)));
  auto status = runner.final_status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state(), v1::QUEUED);
  EXPECT_NE(status->message().find("/nonexistent/pendulum-train"), std::string::npos);
}

TEST_F(AttemptRunnerTest, RecoverFindsFinishedAttemptAndItsUnackedEvents) {
  std::filesystem::path dir;
  {
    auto runner = Run("ok", 5);
    ASSERT_TRUE(observer_.WaitFinished(absl::Seconds(30)));
    ASSERT_TRUE(runner->spool()->Ack(3).ok());
    dir = runner->dir();
  }
  RecordingObserver observer;
  auto recovered = AttemptRunner::Recover(dir, &observer);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_FALSE((*recovered)->orphan());
  EXPECT_EQ((*recovered)->run_id(), 7);
  EXPECT_EQ((*recovered)->attempt(), 2u);
  ASSERT_TRUE((*recovered)->final_status().has_value());
  EXPECT_EQ((*recovered)->final_status()->state(), v1::SUCCEEDED);
  EXPECT_EQ((*recovered)->spool()->pending_events(), 5u);  // seq 4..8
}

TEST(MakeFinalStatusTest, ExitZeroWithoutFinishedIsAProtocolViolation) {
  ExitStatus exit;
  auto status = AttemptRunner::MakeFinalStatus(1, 1, exit, false, "", std::nullopt, "", 3);
  EXPECT_EQ(status.state(), v1::FAILED);
  EXPECT_NE(status.message().find("without a Finished event"), std::string::npos);
}

}  // namespace
}  // namespace pendulum::daemon
