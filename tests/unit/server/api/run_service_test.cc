// RunService over a real in-process server: submit/get/list/cancel, owner
// isolation, spec errors that name the field, sweeps, queue reasons.
#include "gtest/gtest.h"
#include "server/api/status_util.h"
#include "tests/unit/server/api/api_test_env.h"

namespace pendulum::testing {
namespace {

class RunServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.StartServer(); }
  ApiTestEnv env_;
};

TEST_F(RunServiceTest, SubmitStoresAQueuedRunOwnedByTheCaller) {
  int64_t id = env_.Submit(env_.alice_token_, {"optimizer.lr=0.05"});
  ASSERT_GT(id, 0);
  v1::Run run = env_.Get(env_.alice_token_, id);
  EXPECT_EQ(run.owner(), "alice");
  EXPECT_EQ(run.state(), v1::QUEUED);
  EXPECT_EQ(run.name(), "quick");
  EXPECT_DOUBLE_EQ(run.spec().optimizer().lr(), 0.05);
  // With no worker connected the scheduler says why the run waits.
  EXPECT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, id).queue_reason() == "no worker online"; }))
      << env_.Get(env_.alice_token_, id).queue_reason();
}

TEST_F(RunServiceTest, SpecMessageIsAcceptedToo) {
  v1::SubmitRunRequest request;
  v1::RunSpec& spec = *request.mutable_spec();
  spec.set_name("from-message");
  spec.mutable_model()->set_arch("mlp");
  spec.mutable_data()->set_dataset("synthetic");
  spec.mutable_optimizer()->set_type("sgd");
  spec.mutable_optimizer()->set_lr(0.1);
  spec.mutable_schedule()->set_epochs(1);
  spec.mutable_schedule()->set_batch_size(8);
  v1::SubmitRunResponse response;
  grpc::Status status = env_.runs_->SubmitRun(ApiTestEnv::Context(env_.alice_token_).get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(env_.Get(env_.alice_token_, response.run_ids(0)).name(), "from-message");
}

TEST_F(RunServiceTest, BadSpecIsInvalidArgumentNamingTheFieldAndStoresNothing) {
  v1::SubmitRunRequest request;
  request.set_spec_text(kQuickSpec);
  request.add_overrides("optimizer.lr=-0.1");
  v1::SubmitRunResponse response;
  grpc::Status status = env_.runs_->SubmitRun(ApiTestEnv::Context(env_.alice_token_).get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("optimizer.lr"), std::string::npos) << status.error_message();

  v1::SubmitRunRequest unknown;
  unknown.set_spec_text(std::string(kQuickSpec) + "colour: blue\n");
  status = env_.runs_->SubmitRun(ApiTestEnv::Context(env_.alice_token_).get(), unknown, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("colour"), std::string::npos) << status.error_message();

  v1::SubmitRunRequest both;
  both.set_spec_text(kQuickSpec);
  both.mutable_spec()->set_name("x");
  status = env_.runs_->SubmitRun(ApiTestEnv::Context(env_.alice_token_).get(), both, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::ListRunsRequest list;
  v1::ListRunsResponse runs;
  ASSERT_TRUE(env_.runs_->ListRuns(ApiTestEnv::Context(env_.admin_token_).get(), list, &runs).ok());
  EXPECT_EQ(runs.runs_size(), 0);
}

TEST_F(RunServiceTest, SweepIsTheCartesianProductOfItsAxes) {
  v1::SubmitRunRequest request;
  request.set_spec_text(kQuickSpec);
  auto* seeds = request.add_sweep();
  seeds->set_path("seed");
  for (const char* v : {"1", "2", "3"}) seeds->add_values(v);
  auto* lrs = request.add_sweep();
  lrs->set_path("optimizer.lr");
  for (const char* v : {"0.1", "0.01"}) lrs->add_values(v);
  v1::SubmitRunResponse response;
  grpc::Status status = env_.runs_->SubmitRun(ApiTestEnv::Context(env_.alice_token_).get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.run_ids_size(), 6);
  EXPECT_GT(response.sweep_id(), 0);
  std::set<std::pair<uint64_t, double>> combos;
  for (int64_t id : response.run_ids()) {
    v1::Run run = env_.Get(env_.alice_token_, id);
    EXPECT_EQ(run.sweep_id(), response.sweep_id());
    combos.emplace(run.spec().seed(), run.spec().optimizer().lr());
  }
  EXPECT_EQ(combos.size(), 6u);
  EXPECT_EQ(combos.count({3, 0.01}), 1u);

  v1::ListRunsRequest by_sweep;
  by_sweep.set_sweep_id(response.sweep_id());
  v1::ListRunsResponse listed;
  ASSERT_TRUE(env_.runs_->ListRuns(ApiTestEnv::Context(env_.alice_token_).get(), by_sweep, &listed).ok());
  EXPECT_EQ(listed.runs_size(), 6);
}

TEST_F(RunServiceTest, SweepOverAThousandRunsIsRefused) {
  v1::SubmitRunRequest request;
  request.set_spec_text(kQuickSpec);
  for (const char* path : {"seed", "schedule.batch_size"}) {
    auto* axis = request.add_sweep();
    axis->set_path(path);
    for (int i = 1; i <= 40; ++i) axis->add_values(std::to_string(i));
  }
  v1::SubmitRunResponse response;
  grpc::Status status = env_.runs_->SubmitRun(ApiTestEnv::Context(env_.alice_token_).get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("1000"), std::string::npos) << status.error_message();
}

TEST_F(RunServiceTest, UsersSeeOnlyTheirOwnRunsAdminsSeeAll) {
  int64_t alice_run = env_.Submit(env_.alice_token_);
  int64_t bob_run = env_.Submit(env_.bob_token_);

  v1::GetRunRequest get;
  get.set_run_id(alice_run);
  v1::Run run;
  grpc::Status status = env_.runs_->GetRun(ApiTestEnv::Context(env_.bob_token_).get(), get, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  // Exactly the message a missing run gets: ids reveal nothing.
  get.set_run_id(999999);
  grpc::Status missing = env_.runs_->GetRun(ApiTestEnv::Context(env_.bob_token_).get(), get, &run);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message().substr(0, 4), missing.error_message().substr(0, 4));

  v1::CancelRunRequest cancel;
  cancel.set_run_id(alice_run);
  status = env_.runs_->CancelRun(ApiTestEnv::Context(env_.bob_token_).get(), cancel, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(env_.Get(env_.alice_token_, alice_run).state(), v1::QUEUED);

  v1::ListRunsRequest list;
  v1::ListRunsResponse listed;
  ASSERT_TRUE(env_.runs_->ListRuns(ApiTestEnv::Context(env_.bob_token_).get(), list, &listed).ok());
  ASSERT_EQ(listed.runs_size(), 1);
  EXPECT_EQ(listed.runs(0).id(), bob_run);

  list.set_owner("alice");
  status = env_.runs_->ListRuns(ApiTestEnv::Context(env_.bob_token_).get(), list, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  listed.Clear();
  ASSERT_TRUE(env_.runs_->ListRuns(ApiTestEnv::Context(env_.admin_token_).get(), list, &listed).ok());
  ASSERT_EQ(listed.runs_size(), 1);
  EXPECT_EQ(listed.runs(0).id(), alice_run);
  EXPECT_EQ(env_.Get(env_.admin_token_, bob_run).owner(), "bob");
}

TEST_F(RunServiceTest, QueuedRunCancelsImmediatelyAndOnlyOnce) {
  int64_t id = env_.Submit(env_.alice_token_);
  v1::CancelRunRequest cancel;
  cancel.set_run_id(id);
  cancel.set_reason("changed my mind");
  v1::Run run;
  grpc::Status status = env_.runs_->CancelRun(ApiTestEnv::Context(env_.alice_token_).get(), cancel, &run);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(run.state(), v1::CANCELLED);
  EXPECT_NE(run.exit_reason().find("changed my mind"), std::string::npos) << run.exit_reason();
  status = env_.runs_->CancelRun(ApiTestEnv::Context(env_.alice_token_).get(), cancel, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("CANCELLED"), std::string::npos) << status.error_message();
}

TEST_F(RunServiceTest, ListFiltersByStateAndPages) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(env_.Submit(env_.alice_token_));
  v1::CancelRunRequest cancel;
  cancel.set_run_id(ids[0]);
  v1::Run run;
  ASSERT_TRUE(env_.runs_->CancelRun(ApiTestEnv::Context(env_.alice_token_).get(), cancel, &run).ok());

  v1::ListRunsRequest list;
  list.add_states(v1::QUEUED);
  list.set_page_size(3);
  v1::ListRunsResponse page1, page2;
  ASSERT_TRUE(env_.runs_->ListRuns(ApiTestEnv::Context(env_.alice_token_).get(), list, &page1).ok());
  ASSERT_EQ(page1.runs_size(), 3);
  EXPECT_EQ(page1.runs(0).id(), ids[4]);  // newest first
  ASSERT_FALSE(page1.next_page_token().empty());
  list.set_page_token(page1.next_page_token());
  ASSERT_TRUE(env_.runs_->ListRuns(ApiTestEnv::Context(env_.alice_token_).get(), list, &page2).ok());
  ASSERT_EQ(page2.runs_size(), 1);
  EXPECT_EQ(page2.runs(0).id(), ids[1]);
  EXPECT_TRUE(page2.next_page_token().empty());

  list.set_page_size(1001);
  grpc::Status status = env_.runs_->ListRuns(ApiTestEnv::Context(env_.alice_token_).get(), list, &page1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(RunServiceTest, StatusMessagesAreCappedAtOneKilobyte) {
  grpc::Status s = api::ToGrpcStatus(absl::InvalidArgumentError(std::string(5000, 'x')));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().size(), api::kMaxStatusMessageBytes);
  EXPECT_TRUE(api::ToGrpcStatus(absl::OkStatus()).ok());
}

TEST_F(RunServiceTest, QueryMetricsOfAnotherUsersRunIsNotFound) {
  int64_t id = env_.Submit(env_.alice_token_);
  v1::QueryMetricsRequest query;
  query.set_run_id(id);
  v1::QueryMetricsResponse response;
  EXPECT_TRUE(env_.runs_->QueryMetrics(ApiTestEnv::Context(env_.alice_token_).get(), query, &response).ok());
  EXPECT_EQ(env_.runs_->QueryMetrics(ApiTestEnv::Context(env_.bob_token_).get(), query, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace pendulum::testing
