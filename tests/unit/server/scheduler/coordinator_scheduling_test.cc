// The policy wired into the coordinator, end to end through a real in-process
// server on loopback and a scripted worker (FakeWorker): a high-priority
// submit preempts a running low-priority run (Cancel with the reason, then
// requeue as the next attempt, never FAILED), fractional runs share one GPU
// with their memory share in the assignment, and queue reasons reach GetRun.
#include "gtest/gtest.h"
#include "tests/unit/server/api/api_test_env.h"
#include "tests/unit/server/api/fake_worker.h"

namespace pendulum::testing {
namespace {

TEST(CoordinatorSchedulingTest, HighPrioritySubmitPreemptsAndTheVictimIsRequeued) {
  ApiTestEnv env;
  env.StartServer();
  FakeWorker w(&env, "w1", /*slots=*/1);
  w.Register();
  w.Connect();

  const int64_t low = env.Submit(env.alice_token_, {"priority=0"});
  auto first = w.NextAssignment();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->run_id(), low);
  EXPECT_EQ(first->attempt(), 1u);
  w.SendEvents(low, 1, {Started(1), Loss(2, 10, 0.5)});
  ASSERT_TRUE(w.WaitForAck(low, 1, 2));
  ASSERT_TRUE(Eventually([&] { return env.Get(env.alice_token_, low).state() == v1::RUNNING; }));

  const int64_t high = env.Submit(env.bob_token_, {"priority=50"});
  auto cancel = w.Next([&](const v1::ServerMessage& m) { return m.has_cancel() && m.cancel().run_id() == low; });
  ASSERT_TRUE(cancel.has_value());
  EXPECT_EQ(cancel->cancel().attempt(), 1u);
  EXPECT_EQ(cancel->cancel().reason(), absl::StrCat("preempted by run ", high, " (priority 50 > 0)"));
  EXPECT_GE(cancel->cancel().grace_seconds(), 60u);  // time to write the checkpoint
  // The reason is stored just after the Cancel is queued: poll for it.
  const std::string preempting = absl::StrCat("preempting lower priority run ", low, " on w1 to checkpoint and stop");
  EXPECT_TRUE(Eventually([&] { return env.Get(env.bob_token_, high).queue_reason() == preempting; }))
      << env.Get(env.bob_token_, high).queue_reason();
  EXPECT_EQ(env.Get(env.bob_token_, high).state(), v1::QUEUED);
  // Nothing is placed on the slot until the victim has really stopped.
  EXPECT_FALSE(w.Next([](const v1::ServerMessage& m) { return m.has_assign(); }, absl::Milliseconds(300)));

  // The trainer checkpointed on SIGTERM and exited; the daemon reports CANCELLED.
  w.SendStatus(low, 1, v1::CANCELLED, 143, "cancelled: preempted (trainer exit 143)");
  auto second = w.NextAssignment();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->run_id(), high);
  ASSERT_TRUE(Eventually([&] {
    v1::Run r = env.Get(env.alice_token_, low);
    return r.state() == v1::QUEUED && r.attempt() == 1 + 1;
  }));
  EXPECT_TRUE(Eventually([&] {
    return env.Get(env.alice_token_, low).queue_reason() == "needs a CPU slot, all 1 slot is busy";
  })) << env.Get(env.alice_token_, low).queue_reason();

  // When the high-priority run ends, the preempted run gets its next attempt.
  w.SendEvents(high, 1, {Started(1)});
  w.SendStatus(high, 1, v1::SUCCEEDED, 0, "done");
  auto third = w.NextAssignment();
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->run_id(), low);
  EXPECT_EQ(third->attempt(), 2u);
}

TEST(CoordinatorSchedulingTest, PreemptedRunIsRequeuedEvenIfTheServerRestartedMeanwhile) {
  ApiTestEnv env;
  env.StartServer();
  auto w = std::make_unique<FakeWorker>(&env, "w1", 1);
  w->Register();
  w->Connect();
  const int64_t low = env.Submit(env.alice_token_, {"priority=0"});
  ASSERT_TRUE(w->NextAssignment().has_value());
  w->SendEvents(low, 1, {Started(1)});
  ASSERT_TRUE(Eventually([&] { return env.Get(env.alice_token_, low).state() == v1::RUNNING; }));
  const int64_t high = env.Submit(env.bob_token_, {"priority=50"});
  auto cancel = w->Next([&](const v1::ServerMessage& m) { return m.has_cancel(); });
  ASSERT_TRUE(cancel.has_value());
  // Bob gives up, so the restarted server has no reason to preempt again and
  // only the worker's report says this was a preemption.
  v1::CancelRunRequest give_up;
  give_up.set_run_id(high);
  v1::Run gone;
  ASSERT_TRUE(env.runs_->CancelRun(ApiTestEnv::Context(env.bob_token_).get(), give_up, &gone).ok());

  // The server restarts before the trainer has stopped; the worker keeps the
  // attempt, reconnects, and reports the stop with the Cancel's reason.
  w.reset();
  env.StopServer();
  env.StartServer();
  w = std::make_unique<FakeWorker>(&env, "w1", 1);
  w->Register();
  w->Connect({{low, 1}});
  w->SendStatus(low, 1, v1::CANCELLED, 143,
                absl::StrCat("cancelled: ", cancel->cancel().reason(), " (trainer exited with status 143)"));
  // Requeued (not CANCELLED) and, the slot being free, placed again as attempt 2.
  auto next = w->NextAssignment();
  ASSERT_TRUE(next.has_value()) << v1::RunState_Name(env.Get(env.alice_token_, low).state());
  EXPECT_EQ(next->run_id(), low);
  EXPECT_EQ(next->attempt(), 2u);
}

TEST(CoordinatorSchedulingTest, UserCancelDuringPreemptionCancelsInsteadOfRequeueing) {
  ApiTestEnv env;
  env.StartServer();
  FakeWorker w(&env, "w1", 1);
  w.Register();
  w.Connect();
  const int64_t low = env.Submit(env.alice_token_, {"priority=0"});
  ASSERT_TRUE(w.NextAssignment().has_value());
  w.SendEvents(low, 1, {Started(1)});
  ASSERT_TRUE(Eventually([&] { return env.Get(env.alice_token_, low).state() == v1::RUNNING; }));
  env.Submit(env.bob_token_, {"priority=50"});
  ASSERT_TRUE(w.Next([&](const v1::ServerMessage& m) { return m.has_cancel(); }).has_value());
  v1::CancelRunRequest request;
  request.set_run_id(low);
  v1::Run cancelled;
  ASSERT_TRUE(env.runs_->CancelRun(ApiTestEnv::Context(env.alice_token_).get(), request, &cancelled).ok());
  w.SendStatus(low, 1, v1::CANCELLED, 143);
  ASSERT_TRUE(Eventually([&] { return env.Get(env.alice_token_, low).state() == v1::CANCELLED; }));
}

TEST(CoordinatorSchedulingTest, FractionalRunsShareOneGpuWithTheirMemoryShare) {
  ApiTestEnv env;
  env.StartServer();
  FakeWorker w(&env, "w1", /*slots=*/0, /*gpus=*/1);
  w.Register();
  w.Connect();
  const int64_t a = env.Submit(env.alice_token_, {"resources.gpu_fraction=0.5"});
  const int64_t b = env.Submit(env.bob_token_, {"resources.gpu_fraction=0.5"});
  const int64_t c = env.Submit(env.bob_token_, {"resources.gpu_fraction=0.25"});
  std::vector<int64_t> placed;
  for (int i = 0; i < 2; ++i) {
    auto assign = w.NextAssignment();
    ASSERT_TRUE(assign.has_value());
    placed.push_back(assign->run_id());
    ASSERT_EQ(assign->gpu_indices_size(), 1);
    EXPECT_EQ(assign->gpu_indices(0), 0u);
    EXPECT_DOUBLE_EQ(assign->gpu_memory_fraction(), 0.5);
  }
  std::sort(placed.begin(), placed.end());
  EXPECT_EQ(placed, (std::vector<int64_t>{a, b}));
  ASSERT_TRUE(Eventually([&] {
    return env.Get(env.bob_token_, c).queue_reason() ==
           "needs 0.25 of a GPU, every GPU is taken (most free share on a shared GPU: 0)";
  })) << env.Get(env.bob_token_, c).queue_reason();
  // One half frees: the quarter run fits there.
  w.SendEvents(a, 1, {Started(1)});
  w.SendStatus(a, 1, v1::SUCCEEDED, 0, "done");
  auto third = w.NextAssignment();
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->run_id(), c);
  EXPECT_DOUBLE_EQ(third->gpu_memory_fraction(), 0.25);
}

TEST(CoordinatorSchedulingTest, GangRunTooBigSaysSoAndDrainStopsPlacements) {
  ApiTestEnv env;
  env.StartServer();
  FakeWorker w(&env, "w1", /*slots=*/1, /*gpus=*/2);
  w.Register();
  w.Connect();
  const int64_t big = env.Submit(env.alice_token_, {"resources.gpus=4"});
  ASSERT_TRUE(Eventually([&] {
    return env.Get(env.alice_token_, big).queue_reason() == "needs 4 GPUs, no online worker has more than 2";
  })) << env.Get(env.alice_token_, big).queue_reason();

  v1::DrainWorkerRequest drain;
  drain.set_worker_id("w1");
  v1::WorkerInfo info;
  ASSERT_TRUE(env.admin_->DrainWorker(ApiTestEnv::Context(env.admin_token_).get(), drain, &info).ok());
  const int64_t cpu = env.Submit(env.alice_token_);
  ASSERT_TRUE(Eventually([&] {
    return env.Get(env.alice_token_, cpu).queue_reason() == "no worker online (all workers are draining)";
  })) << env.Get(env.alice_token_, cpu).queue_reason();
  EXPECT_FALSE(w.Next([](const v1::ServerMessage& m) { return m.has_assign(); }, absl::Milliseconds(200)));
  ASSERT_TRUE(env.admin_->UndrainWorker(ApiTestEnv::Context(env.admin_token_).get(), drain, &info).ok());
  auto assign = w.NextAssignment();
  ASSERT_TRUE(assign.has_value());
  EXPECT_EQ(assign->run_id(), cpu);
}

}  // namespace
}  // namespace pendulum::testing
