// Preemption with real processes: a low-priority run is training on the only
// CPU slot; a high-priority submit makes the server preempt it (SIGTERM →
// the trainer checkpoints and exits → requeue), the high-priority run takes
// the slot, and the low-priority run then resumes from its checkpoint as
// attempt 2 and finishes — with every metric step stored exactly once
// (nothing lost, nothing duplicated across the two attempts).
#include <cstdlib>

#include "absl/strings/str_join.h"

#include "tests/integration/worker/worker_fixture.h"

namespace pendulum::cluster {
namespace {

// pendulum-train of this build, else $PENDULUM_TRAINER (e.g. from a build
// with PENDULUM_BUILD_TRAIN=ON next to a server-only build).
std::string Trainer() {
  if (fs::exists(TrainerBinary())) return TrainerBinary();
  const char* env = std::getenv("PENDULUM_TRAINER");
  return env != nullptr && fs::exists(env) ? env : "";
}

class SchedulerClusterTest : public WorkerClusterTest {};

TEST_F(SchedulerClusterTest, HighPriorityRunPreemptsAndTheVictimResumesFromItsCheckpoint) {
  const std::string trainer = Trainer();
  if (trainer.empty()) {
    GTEST_SKIP() << "pendulum-train not built (" << TrainerBinary()
                 << ") and PENDULUM_TRAINER not set; configure with PENDULUM_BUILD_TRAIN=ON to run this test";
  }
  ASSERT_NE(StartWorker("w1", trainer), nullptr);  // one CPU slot

  // ~800 steps (8 per epoch), a metric point per step: several seconds of training.
  auto low = client_->Submit(QuickSpec(), {"schedule.epochs=100", "priority=0", "name=low"});
  ASSERT_TRUE(low.ok()) << low.status();
  auto running = client_->WaitFor(
      *low, [](const v1::Run& r) { return r.state() == v1::RUNNING && r.progress().step() >= 40; },
      absl::Seconds(120));
  ASSERT_TRUE(running.ok()) << running.status() << "\n" << Logs();

  auto high = client_->Submit(QuickSpec(), {"schedule.epochs=2", "priority=50", "name=high"});
  ASSERT_TRUE(high.ok()) << high.status();

  // The low run goes back to the queue as attempt 2 (never FAILED/CANCELLED).
  auto requeued = client_->WaitFor(*low, [](const v1::Run& r) { return r.attempt() >= 2 || IsTerminal(r.state()); },
                                   absl::Seconds(120));
  ASSERT_TRUE(requeued.ok()) << requeued.status() << "\n" << Logs();
  ASSERT_EQ(requeued->attempt(), 2u) << "low finished before it could be preempted: "
                                     << v1::RunState_Name(requeued->state());

  auto high_done = client_->WaitFor(*high, [](const v1::Run& r) { return IsTerminal(r.state()); }, absl::Seconds(180));
  ASSERT_TRUE(high_done.ok()) << high_done.status() << "\n" << Logs();
  EXPECT_EQ(high_done->state(), v1::SUCCEEDED) << high_done->exit_reason();
  EXPECT_EQ(high_done->attempt(), 1u);

  auto low_done = client_->WaitFor(*low, [](const v1::Run& r) { return IsTerminal(r.state()); }, absl::Seconds(300));
  ASSERT_TRUE(low_done.ok()) << low_done.status() << "\n" << Logs();
  ASSERT_EQ(low_done->state(), v1::SUCCEEDED) << low_done->exit_reason() << "\n" << Logs();
  EXPECT_EQ(low_done->attempt(), 2u);

  Db db(config_.db);
  const std::string loss = absl::StrCat("run_id=", *low, " AND name_id=(SELECT id FROM metric_names WHERE name='loss')");
  // The run's events say why it was requeued.
  EXPECT_GE(db.Count(absl::StrCat("SELECT COUNT(*) FROM run_events WHERE run_id=", *low,
                                  " AND reason LIKE '%preempted by run ", *high, "%'")),
            1)
      << absl::StrJoin(db.Query(absl::StrCat("SELECT reason FROM run_events WHERE run_id=", *low)), "\n");
  // Attempt 2 resumed from a checkpoint, not from step 1.
  const int64_t second_first = db.Count(absl::StrCat("SELECT MIN(step) FROM metrics WHERE ", loss, " AND attempt=2"));
  const int64_t first_last = db.Count(absl::StrCat("SELECT MAX(step) FROM metrics WHERE ", loss, " AND attempt=1"));
  EXPECT_GT(second_first, 1) << "attempt 2 started over instead of resuming";
  EXPECT_GE(first_last + 1, second_first) << "steps between the attempts are missing";
  // No lost metric point: the live (not superseded) loss points cover every
  // step from the first to the last exactly once.
  const std::string live = absl::StrCat(" FROM metrics WHERE ", loss, " AND superseded=0");
  const int64_t min_step = db.Count("SELECT MIN(step)" + live);
  const int64_t max_step = db.Count("SELECT MAX(step)" + live);
  const int64_t distinct = db.Count("SELECT COUNT(DISTINCT step)" + live);
  const int64_t rows = db.Count("SELECT COUNT(*)" + live);
  EXPECT_EQ(min_step, db.Count(absl::StrCat("SELECT MIN(step) FROM metrics WHERE ", loss, " AND attempt=1")));
  EXPECT_LE(min_step, 1);
  EXPECT_EQ(max_step, 800);  // 100 epochs × 8 steps
  EXPECT_EQ(distinct, max_step - min_step + 1);
  EXPECT_EQ(rows, distinct) << "a step is stored twice";
  // Attempt 1's points after the resume step (if any) were superseded, not deleted.
  EXPECT_EQ(db.Count(absl::StrCat("SELECT COUNT(*) FROM metrics WHERE ", loss, " AND attempt=1 AND step<",
                                  second_first, " AND superseded=1")),
            0);
}

}  // namespace
}  // namespace pendulum::cluster
