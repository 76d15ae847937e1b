// RunStore: lifecycle with history, guards, requeue, sweeps, paging and filters.
#include "server/store/run_store.h"

#include <set>
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/server/store/store_test_env.h"

namespace pendulum::store {
namespace {

using RunMsg = pendulum::v1::Run;
using pendulum::v1::RunSpec;
using testing::StoreTest;

RunSpec Spec(const std::string& name, int priority = 0, uint32_t gpus = 0) {
  RunSpec spec;
  spec.set_name(name);
  spec.set_priority(priority);
  spec.mutable_resources()->set_gpus(gpus);
  spec.mutable_optimizer()->set_lr(0.01);
  return spec;
}

class RunStoreTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    UserStore users(db_.get(), &clock_);
    ASSERT_TRUE(users.CreateUser("alice", pendulum::v1::USER).ok());
    ASSERT_TRUE(users.CreateUser("bob", pendulum::v1::USER).ok());
    runs_ = std::make_unique<RunStore>(db_.get(), &clock_);
  }
  std::unique_ptr<RunStore> runs_;
};

TEST_F(RunStoreTest, CreateStoresSpecAndRequestedResources) {
  ASSERT_OK_AND_ASSIGN(RunMsg run, runs_->CreateRun(Spec("mnist", 7, 2), "alice"));
  EXPECT_GT(run.id(), 0);
  EXPECT_EQ(run.state(), pendulum::v1::QUEUED);
  EXPECT_EQ(run.name(), "mnist");
  EXPECT_EQ(run.owner(), "alice");
  EXPECT_EQ(run.priority(), 7);
  EXPECT_EQ(run.attempt(), 0u);
  EXPECT_EQ(run.created_unix_ms(), clock_.NowUnixMillis());
  ASSERT_OK_AND_ASSIGN(RunMsg got, runs_->GetRun(run.id()));
  EXPECT_EQ(got.spec().optimizer().lr(), 0.01);
  EXPECT_EQ(got.spec().resources().gpus(), 2u);
}

TEST_F(RunStoreTest, UnknownOwnerAndRunAreNotFound) {
  auto r = runs_->CreateRun(Spec("x"), "nobody");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_EQ(runs_->GetRun(424242).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RunStoreTest, LifecycleRecordsEveryChangeWithItsReason) {
  ASSERT_OK_AND_ASSIGN(RunMsg run, runs_->CreateRun(Spec("life"), "alice"));
  clock_.AdvanceMs(10);
  ASSERT_OK_AND_ASSIGN(run, runs_->AssignRun(run.id(), "w1", "best fit: 1 free slot"));
  EXPECT_EQ(run.state(), pendulum::v1::STARTING);
  EXPECT_EQ(run.attempt(), 1u);
  EXPECT_EQ(run.worker_id(), "w1");
  clock_.AdvanceMs(10);
  RunTransition running;
  running.to = pendulum::v1::RUNNING;
  running.allowed_from = {pendulum::v1::STARTING};
  running.expected_attempt = 1;
  running.reason = "trainer started";
  ASSERT_OK_AND_ASSIGN(run, runs_->UpdateRunState(run.id(), running));
  EXPECT_EQ(run.started_unix_ms(), clock_.NowUnixMillis());
  clock_.AdvanceMs(1000);
  RunTransition done;
  done.to = pendulum::v1::SUCCEEDED;
  done.reason = "finished";
  done.exit_code = 0;
  ASSERT_OK_AND_ASSIGN(run, runs_->UpdateRunState(run.id(), done));
  EXPECT_EQ(run.state(), pendulum::v1::SUCCEEDED);
  EXPECT_EQ(run.finished_unix_ms(), clock_.NowUnixMillis());
  EXPECT_EQ(run.exit_reason(), "finished");

  ASSERT_OK_AND_ASSIGN(auto events, runs_->ListRunEvents(run.id()));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].to_state, pendulum::v1::QUEUED);
  EXPECT_EQ(events[1].to_state, pendulum::v1::STARTING);
  EXPECT_EQ(events[1].reason, "best fit: 1 free slot");
  EXPECT_EQ(events[1].worker_id, "w1");
  EXPECT_EQ(events[2].from_state, pendulum::v1::STARTING);
  EXPECT_EQ(events[2].to_state, pendulum::v1::RUNNING);
  EXPECT_EQ(events[3].to_state, pendulum::v1::SUCCEEDED);

  // A finished run cannot change again.
  RunTransition cancel;
  cancel.to = pendulum::v1::CANCELLED;
  auto again = runs_->UpdateRunState(run.id(), cancel);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
  EXPECT_NE(again.status().message().find("SUCCEEDED"), std::string::npos);
}

TEST_F(RunStoreTest, GuardsRejectWrongStateAndStaleAttempt) {
  ASSERT_OK_AND_ASSIGN(RunMsg run, runs_->CreateRun(Spec("g"), "alice"));
  RunTransition running;
  running.to = pendulum::v1::RUNNING;
  running.allowed_from = {pendulum::v1::STARTING};
  EXPECT_EQ(runs_->UpdateRunState(run.id(), running).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_OK(runs_->AssignRun(run.id(), "w1", "placed").status());
  EXPECT_EQ(runs_->AssignRun(run.id(), "w2", "again").status().code(), absl::StatusCode::kFailedPrecondition);
  running.expected_attempt = 2;
  EXPECT_EQ(runs_->UpdateRunState(run.id(), running).status().code(), absl::StatusCode::kFailedPrecondition);
  RunTransition bad;
  bad.to = pendulum::v1::QUEUED;
  EXPECT_EQ(runs_->UpdateRunState(run.id(), bad).status().code(), absl::StatusCode::kInvalidArgument);
  // Nothing of the rejected calls reached the history.
  ASSERT_OK_AND_ASSIGN(auto events, runs_->ListRunEvents(run.id()));
  EXPECT_EQ(events.size(), 2u);
}

TEST_F(RunStoreTest, RequeueBumpsAttemptOnceAndClearsWorker) {
  ASSERT_OK_AND_ASSIGN(RunMsg run, runs_->CreateRun(Spec("rq"), "alice"));
  ASSERT_OK(runs_->AssignRun(run.id(), "w1", "placed").status());
  ASSERT_OK_AND_ASSIGN(run, runs_->RequeueRun(run.id(), 1, "worker w1 lost"));
  EXPECT_EQ(run.state(), pendulum::v1::QUEUED);
  EXPECT_EQ(run.attempt(), 2u);
  EXPECT_EQ(run.worker_id(), "");
  EXPECT_EQ(run.queue_reason(), "worker w1 lost");
  // The same loss reported twice does not requeue twice.
  EXPECT_EQ(runs_->RequeueRun(run.id(), 1, "dup").status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(run, runs_->AssignRun(run.id(), "w2", "placed"));
  EXPECT_EQ(run.attempt(), 2u);
  ASSERT_OK_AND_ASSIGN(auto active, runs_->ListActiveRunsOnWorker("w2"));
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].id(), run.id());
  ASSERT_OK_AND_ASSIGN(auto none, runs_->ListActiveRunsOnWorker("w1"));
  EXPECT_TRUE(none.empty());
}

TEST_F(RunStoreTest, QueueReasonAndProgress) {
  ASSERT_OK_AND_ASSIGN(RunMsg run, runs_->CreateRun(Spec("q"), "alice"));
  ASSERT_OK(runs_->SetQueueReason(run.id(), "no free GPU (needs 2, max free 1)"));
  ASSERT_OK_AND_ASSIGN(run, runs_->GetRun(run.id()));
  EXPECT_EQ(run.queue_reason(), "no free GPU (needs 2, max free 1)");
  EXPECT_EQ(runs_->SetQueueReason(9999, "x").code(), absl::StatusCode::kNotFound);
  ASSERT_OK(runs_->AssignRun(run.id(), "w1", "placed").status());
  pendulum::v1::RunProgress p;
  p.set_step(50);
  p.set_total_steps(100);
  p.set_steps_per_second(12.5);
  ASSERT_OK(runs_->RecordProgress(run.id(), 1, p));
  p.set_step(1);
  ASSERT_OK(runs_->RecordProgress(run.id(), 7, p));  // stale attempt: ignored
  ASSERT_OK_AND_ASSIGN(run, runs_->GetRun(run.id()));
  EXPECT_EQ(run.progress().step(), 50);
  EXPECT_EQ(run.progress().total_steps(), 100);
  EXPECT_EQ(run.progress().steps_per_second(), 12.5);
}

TEST_F(RunStoreTest, SweepIsCreatedAtomically) {
  std::vector<RunSpec> specs;
  for (int i = 0; i < 5; ++i) specs.push_back(Spec("sweep-" + std::to_string(i)));
  ASSERT_OK_AND_ASSIGN(SweepResult sweep, runs_->CreateRuns(specs, "alice", true));
  EXPECT_GT(sweep.sweep_id, 0);
  ASSERT_EQ(sweep.runs.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(sweep.runs[i].sweep_id(), sweep.sweep_id);
    EXPECT_EQ(sweep.runs[i].name(), "sweep-" + std::to_string(i));
  }
  RunFilter f;
  f.sweep_id = sweep.sweep_id;
  ASSERT_OK_AND_ASSIGN(RunPage page, runs_->ListRuns(f));
  EXPECT_EQ(page.runs.size(), 5u);
  // All or nothing: an unknown owner leaves no run behind.
  auto bad = runs_->CreateRuns(specs, "ghost", true);
  EXPECT_FALSE(bad.ok());
  ASSERT_OK_AND_ASSIGN(page, runs_->ListRuns(RunFilter{}));
  EXPECT_EQ(page.runs.size(), 5u);
}

TEST_F(RunStoreTest, PagingVisitsEveryRunOnceNewestFirst) {
  for (int i = 0; i < 57; ++i) {
    ASSERT_OK(runs_->CreateRun(Spec(i % 3 == 0 ? "cifar-" + std::to_string(i) : "mnist-" + std::to_string(i)),
                               i % 2 ? "alice" : "bob")
                  .status());
  }
  RunFilter f;
  f.page_size = 10;
  std::set<int64_t> seen;
  int64_t last = INT64_MAX;
  int pages = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(RunPage page, runs_->ListRuns(f));
    ++pages;
    for (const RunMsg& r : page.runs) {
      EXPECT_LT(r.id(), last);
      last = r.id();
      EXPECT_TRUE(seen.insert(r.id()).second);
    }
    if (page.next_page_token.empty()) break;
    f.page_token = page.next_page_token;
  }
  EXPECT_EQ(seen.size(), 57u);
  EXPECT_EQ(pages, 6);

  RunFilter by_owner;
  by_owner.owner = "alice";
  by_owner.name_contains = "cifar";
  ASSERT_OK_AND_ASSIGN(RunPage page, runs_->ListRuns(by_owner));
  for (const RunMsg& r : page.runs) {
    EXPECT_EQ(r.owner(), "alice");
    EXPECT_NE(r.name().find("cifar"), std::string::npos);
  }
  EXPECT_EQ(page.runs.size(), 9u);  // odd i with i % 3 == 0 below 57: 3, 9, …, 51

  RunFilter by_state;
  by_state.states = {pendulum::v1::RUNNING, pendulum::v1::STARTING};
  ASSERT_OK(runs_->AssignRun(page.runs[0].id(), "w1", "placed").status());
  ASSERT_OK_AND_ASSIGN(RunPage active, runs_->ListRuns(by_state));
  ASSERT_EQ(active.runs.size(), 1u);
  EXPECT_EQ(active.runs[0].id(), page.runs[0].id());

  ASSERT_OK_AND_ASSIGN(auto counts, runs_->CountRunsByState());
  int64_t queued = 0, starting = 0;
  for (auto [state, n] : counts) {
    if (state == pendulum::v1::QUEUED) queued = n;
    if (state == pendulum::v1::STARTING) starting = n;
  }
  EXPECT_EQ(queued, 56);
  EXPECT_EQ(starting, 1);
}

TEST_F(RunStoreTest, BadPageArgumentsNameTheField) {
  RunFilter f;
  f.page_token = "garbage";
  auto r = runs_->ListRuns(f);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("page_token"), std::string::npos);
  RunFilter big;
  big.page_size = 5000;
  r = runs_->ListRuns(big);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("page_size"), std::string::npos);
}

}  // namespace
}  // namespace pendulum::store
