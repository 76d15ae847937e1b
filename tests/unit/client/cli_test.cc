// The CLI commands against a scripted RunService/AdminService served by a
// real in-process gRPC server: what each command sends, how it prints and how
// it fails. The real pendulum-server is exercised in tests/integration/cli.
#include <fstream>
#include <sstream>

#include "client/arg_parser.h"
#include "client/cli.h"
#include "client/commands.h"
#include "client/run_format.h"
#include "client/status_conversion.h"
#include <functional>

#include "gmock/gmock.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/support/test_paths.h"

namespace pendulum::client {
namespace {


// Each handler defaults to UNIMPLEMENTED; tests script the ones they need
// and look at the requests recorded.
class ScriptedRunService final : public v1::RunService::Service {
 public:
  std::function<grpc::Status(const v1::SubmitRunRequest&, v1::SubmitRunResponse*)> submit;
  std::function<grpc::Status(const v1::ListRunsRequest&, v1::ListRunsResponse*)> list;
  std::function<grpc::Status(const v1::GetRunRequest&, v1::Run*)> get;
  std::function<grpc::Status(const v1::QueryMetricsRequest&, v1::QueryMetricsResponse*)> metrics;
  std::vector<v1::RunUpdate> watch_updates;
  std::vector<std::string> tokens_seen;

  grpc::Status SubmitRun(grpc::ServerContext* c, const v1::SubmitRunRequest* r, v1::SubmitRunResponse* o) override {
    Record(c);
    return submit ? submit(*r, o) : Unimplemented();
  }
  grpc::Status ListRuns(grpc::ServerContext* c, const v1::ListRunsRequest* r, v1::ListRunsResponse* o) override {
    Record(c);
    return list ? list(*r, o) : Unimplemented();
  }
  grpc::Status GetRun(grpc::ServerContext* c, const v1::GetRunRequest* r, v1::Run* o) override {
    Record(c);
    return get ? get(*r, o) : Unimplemented();
  }
  grpc::Status QueryMetrics(grpc::ServerContext* c, const v1::QueryMetricsRequest* r,
                            v1::QueryMetricsResponse* o) override {
    Record(c);
    return metrics ? metrics(*r, o) : Unimplemented();
  }
  grpc::Status WatchRun(grpc::ServerContext* c, const v1::WatchRunRequest* r,
                        grpc::ServerWriter<v1::RunUpdate>* w) override {
    Record(c);
    for (const auto& u : watch_updates) w->Write(u);
    return grpc::Status::OK;
  }

 private:
  static grpc::Status Unimplemented() { return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not scripted"); }
  void Record(grpc::ServerContext* c) {
    auto it = c->client_metadata().find("authorization");
    tokens_seen.push_back(it == c->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size()));
  }
};

class ScriptedAdminService final : public v1::AdminService::Service {
 public:
  std::function<grpc::Status(const v1::CreateTokenRequest&, v1::CreateTokenResponse*)> create_token;
  grpc::Status CreateToken(grpc::ServerContext*, const v1::CreateTokenRequest* r, v1::CreateTokenResponse* o) override {
    return create_token ? create_token(*r, o) : grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not scripted");
  }
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&runs_);
    builder.RegisterService(&admin_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto channel = server_->InProcessChannel(grpc::ChannelArguments());
    run_stub_ = v1::RunService::NewStub(channel);
    admin_stub_ = v1::AdminService::NewStub(channel);
    ctx_.runs = run_stub_.get();
    ctx_.admin = admin_stub_.get();
    ctx_.out = &out_;
    ctx_.err = &err_;
    ctx_.token = "tok";
  }
  void TearDown() override { server_->Shutdown(); }
  int Run(std::vector<std::string> args) { return RunCli(args, ctx_); }

  ScriptedRunService runs_;
  ScriptedAdminService admin_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::RunService::Stub> run_stub_;
  std::unique_ptr<v1::AdminService::Stub> admin_stub_;
  std::ostringstream out_, err_;
  CliContext ctx_;
};

TEST(ArgParserTest, ValuesBoolsPositionalsAndErrors) {
  ArgParser p;
  p.AddValueFlag("set");
  p.AddBoolFlag("json");
  ASSERT_TRUE(p.Parse({"file.yaml", "--set", "a=1", "--set=b=2", "--json", "--", "--not-a-flag"}).ok());
  EXPECT_EQ(p.GetAll("set"), (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_TRUE(p.Has("json"));
  EXPECT_EQ(p.positional(), (std::vector<std::string>{"file.yaml", "--not-a-flag"}));
  ArgParser q;
  q.AddValueFlag("set");
  absl::Status unknown = q.Parse({"--bogus"});
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.message()), ::testing::HasSubstr("unknown flag --bogus; this command takes: --set"));
  EXPECT_THAT(std::string(q.Parse({"--set"}).message()), ::testing::HasSubstr("--set: missing value"));
}

TEST(SweepValuesTest, CommasInsideBracketsDoNotSplit) {
  EXPECT_EQ(SplitSweepValues("1,2,3"), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(SplitSweepValues("[64,64],[128, 128]"), (std::vector<std::string>{"[64,64]", "[128, 128]"}));
  EXPECT_EQ(SplitSweepValues("{a: 1, b: 2},'x,y'"), (std::vector<std::string>{"{a: 1, b: 2}", "'x,y'"}));
}

TEST(GlobalOptionsTest, FlagsBeatEnvironmentBeatsDefault) {
  auto none = [](const char*) -> const char* { return nullptr; };
  auto env = [](const char* n) -> const char* {
    return std::string(n) == "PENDULUM_SERVER" ? "env:1" : std::string(n) == "PENDULUM_TOKEN" ? "envtok" : nullptr;
  };
  auto d = ParseGlobalOptions({"runs"}, none);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->server, "127.0.0.1:7070");
  EXPECT_EQ(d->token, "");
  auto e = ParseGlobalOptions({"runs", "--json"}, env);
  EXPECT_EQ(e->server, "env:1");
  EXPECT_EQ(e->token, "envtok");
  EXPECT_EQ(e->command, (std::vector<std::string>{"runs", "--json"}));
  auto f = ParseGlobalOptions({"--server", "h:2", "runs", "--token=t2"}, env);
  EXPECT_EQ(f->server, "h:2");
  EXPECT_EQ(f->token, "t2");
  EXPECT_EQ(f->command, (std::vector<std::string>{"runs"}));
}

TEST(StatusConversionTest, KeepsCodeAndServerMessage) {
  absl::Status s = FromGrpcStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "spec.optimizer.lr: got -0.1"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "spec.optimizer.lr: got -0.1");
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "x")).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(RunFormatTest, ProgressAndDurations) {
  v1::RunProgress p;
  p.set_step(450);
  p.set_total_steps(1000);
  p.set_last_loss(0.4312);
  p.set_steps_per_second(10);
  EXPECT_EQ(FormatProgress(p), "450/1000 (45.0%)");
  EXPECT_EQ(ProgressBar(p, 10), "[####......]  45% step 450/1000 loss 0.4312 10 steps/s ETA 55s");
  EXPECT_EQ(FormatDuration(3725), "1h02m");
  v1::RunState s;
  EXPECT_TRUE(ParseState("running", &s));
  EXPECT_EQ(s, v1::RUNNING);
  EXPECT_FALSE(ParseState("sleeping", &s));
}

TEST_F(CliTest, SubmitSendsTextOverridesAndSweepAndPrintsIdsAlone) {
  const auto path = testing::MakeTestTempDir() / "spec.yaml";
  std::ofstream(path) << "name: x\n";
  v1::SubmitRunRequest sent;
  runs_.submit = [&](const v1::SubmitRunRequest& r, v1::SubmitRunResponse* reply) {
    sent = r;
    reply->add_run_ids(7);
    reply->add_run_ids(8);
    reply->set_sweep_id(3);
    return grpc::Status::OK;
  };
  ASSERT_EQ(Run({"submit", path.string(), "--set", "optimizer.lr=0.01", "--sweep", "model.hidden=[8,8],[16]"}), 0)
      << err_.str();
  EXPECT_EQ(sent.spec_text(), "name: x\n");
  ASSERT_EQ(sent.overrides_size(), 1);
  EXPECT_EQ(sent.overrides(0), "optimizer.lr=0.01");
  ASSERT_EQ(sent.sweep_size(), 1);
  EXPECT_EQ(sent.sweep(0).path(), "model.hidden");
  EXPECT_EQ(sent.sweep(0).values_size(), 2);
  EXPECT_EQ(out_.str(), "7\n8\n");
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("sweep 3: 2 runs"));
  EXPECT_EQ(runs_.tokens_seen, (std::vector<std::string>{"Bearer tok"}));
}

TEST_F(CliTest, ServerErrorGoesToStderrWithExitOne) {
  runs_.submit = [](const v1::SubmitRunRequest&, v1::SubmitRunResponse*) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "spec.optimizer.lr: got -0.1, must be > 0");
  };
  const auto path = testing::MakeTestTempDir() / "spec.yaml";
  std::ofstream(path) << "name: x\n";
  EXPECT_EQ(Run({"submit", path.string()}), 1);
  EXPECT_EQ(out_.str(), "");
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("spec.optimizer.lr: got -0.1, must be > 0"));
}

TEST_F(CliTest, MissingSpecFileIsAClearError) {
  EXPECT_EQ(Run({"submit", "/nonexistent/spec.yaml"}), 1);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("cannot read spec file '/nonexistent/spec.yaml'"));
}

TEST_F(CliTest, DryRunValidatesLocallyWithoutCallingTheServer) {
  const auto path = testing::MakeTestTempDir() / "spec.yaml";
  std::ofstream(path) << "name: x\nmodel: {arch: mlp}\ndata: {dataset: synthetic}\n"
                         "optimizer: {type: sgd, lr: 0.1}\nschedule: {epochs: 1, batch_size: 4}\n";
  ASSERT_EQ(Run({"submit", path.string(), "--dry-run", "--set", "seed=5"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("seed: 5"));
  out_.str("");
  EXPECT_EQ(Run({"submit", path.string(), "--dry-run", "--set", "optimizer.lr=0"}), 1);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("spec.optimizer.lr"));
  EXPECT_TRUE(runs_.tokens_seen.empty()) << "--dry-run must not call the server";
}

TEST_F(CliTest, RunsSendsFiltersAndPages) {
  std::vector<v1::ListRunsRequest> requests;
  runs_.list = [&](const v1::ListRunsRequest& r, v1::ListRunsResponse* resp) {
    requests.push_back(r);
    if (r.page_token().empty()) {
      resp->add_runs()->set_id(2);
      resp->set_next_page_token("p2");
    } else {
      resp->add_runs()->set_id(1);
    }
    return grpc::Status::OK;
  };
  ASSERT_EQ(Run({"runs", "--state", "queued,running", "--name", "abc", "--json"}), 0) << err_.str();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].states_size(), 2);
  EXPECT_EQ(requests[0].name_contains(), "abc");
  EXPECT_EQ(requests[1].page_token(), "p2");
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("{\"id\":\"2\""));
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("{\"id\":\"1\""));
  EXPECT_EQ(Run({"runs", "--state", "sleeping"}), 1);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("--state: got 'sleeping'"));
}

// watch: exit 0 only when the run SUCCEEDED.
void ScriptWatch(ScriptedRunService* runs, std::vector<v1::RunState> states) {
  for (v1::RunState s : states) {
    v1::RunUpdate u;
    u.mutable_run()->set_id(5);
    u.mutable_run()->set_state(s);
    u.mutable_run()->mutable_progress()->set_step(s == v1::RUNNING ? 10 : 0);
    u.mutable_run()->set_exit_reason(s == v1::FAILED ? "NaN loss" : "");
    runs->watch_updates.push_back(u);
  }
}

TEST_F(CliTest, WatchExitsZeroOnSuccess) {
  ScriptWatch(&runs_, {v1::QUEUED, v1::RUNNING, v1::SUCCEEDED});
  EXPECT_EQ(Run({"watch", "5"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("run 5 RUNNING step 10"));
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("run 5 SUCCEEDED"));
}

TEST_F(CliTest, WatchExitsNonZeroOnFailure) {
  ScriptWatch(&runs_, {v1::RUNNING, v1::FAILED});
  EXPECT_EQ(Run({"watch", "5"}), 1);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("run 5 FAILED"));
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("NaN loss"));
}

TEST_F(CliTest, WatchReportsAStreamThatEndsEarly) {
  ScriptWatch(&runs_, {v1::RUNNING});
  EXPECT_EQ(Run({"watch", "5"}), 1);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("ended before run 5 finished"));
}

TEST_F(CliTest, CompareGroupsBySweptFieldsWithMeanAndStd) {
  // Four runs: lr 0.1 / 0.2 crossed with two seeds; accuracy 0.5,0.7 and 0.8,0.8.
  const double acc[4] = {0.5, 0.7, 0.8, 0.8};
  runs_.get = [](const v1::GetRunRequest& r, v1::Run* run) {
    run->set_id(r.run_id());
    run->set_state(v1::SUCCEEDED);
    run->mutable_spec()->set_name("sweep");
    run->mutable_spec()->set_seed(r.run_id() % 2);
    run->mutable_spec()->mutable_optimizer()->set_lr(r.run_id() <= 2 ? 0.1 : 0.2);
    return grpc::Status::OK;
  };
  std::vector<uint32_t> max_points;
  runs_.metrics = [&](const v1::QueryMetricsRequest& r, v1::QueryMetricsResponse* resp) {
    max_points.push_back(r.max_points());
    auto* s = resp->add_series();
    s->set_name("eval/acc");
    auto* p = s->add_points();
    p->set_step(100);
    p->set_value(acc[r.run_id() - 1]);
    return grpc::Status::OK;
  };
  ASSERT_EQ(Run({"compare", "1", "2", "3", "4", "--json"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("\"config\": \"optimizer.lr=0.1\", \"metric\": \"eval/acc\", \"mean\": 0.6"));
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("\"std\": 0.141421356237309"));
  EXPECT_EQ(max_points, (std::vector<uint32_t>{1, 1, 1, 1})) << "final values come from max_points=1";
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("\"config\": \"optimizer.lr=0.2\", \"metric\": \"eval/acc\", \"mean\": 0.8, \"std\": 0.0"));
}

TEST_F(CliTest, TokenCreatePrintsTokenAlone) {
  v1::CreateTokenRequest sent;
  admin_.create_token = [&](const v1::CreateTokenRequest& r, v1::CreateTokenResponse* reply) {
    sent = r;
    reply->set_token("secret");
    reply->set_token_id(4);
    return grpc::Status::OK;
  };
  ASSERT_EQ(Run({"token", "create", "--user", "dana", "--role", "worker"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "secret\n");
  EXPECT_EQ(sent.user(), "dana");
  EXPECT_EQ(sent.role(), v1::WORKER);
  EXPECT_EQ(Run({"token", "create", "--user", "dana", "--role", "god"}), 1);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("--role: got 'god'"));
}

TEST_F(CliTest, UnimplementedRpcIsReportedNotFaked) {
  EXPECT_EQ(Run({"cancel", "3"}), 1);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("[UNIMPLEMENTED]"));
}

TEST_F(CliTest, UsageErrors) {
  EXPECT_EQ(Run({"show"}), 1);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("expected exactly one RUN id"));
  EXPECT_EQ(Run({"show", "abc"}), 1);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("RUN: got 'abc'"));
  EXPECT_EQ(Run({"nope"}), 2);
  EXPECT_EQ(Run({"show", "--help"}), 0);
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("Usage: pendulum show RUN"));
}

}  // namespace
}  // namespace pendulum::client
