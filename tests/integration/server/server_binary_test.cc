// The real pendulum-server binary on a free loopback port with a real SQLite
// file, driven by a gRPC client: token bootstrap, submit/get/list/cancel,
// auth failures, SIGKILL + restart losing no accepted run, clean SIGTERM,
// and the Prometheus exposer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "pendulum/v1/admin_service.grpc.pb.h"
#include "pendulum/v1/run_service.grpc.pb.h"
#include "pendulum/v1/worker_service.grpc.pb.h"
#include "tests/integration/server/server_process.h"

namespace pendulum::testing {
namespace {

constexpr char kSpec[] = R"(name: integration
model: {arch: mlp, hidden: [8]}
data: {dataset: synthetic}
optimizer: {type: sgd, lr: 0.1}
schedule: {epochs: 1, batch_size: 16}
)";

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
  auto c = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) c->AddMetadata("authorization", "Bearer " + token);
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return c;
}

class ServerBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestTempDir();
    server_ = std::make_unique<ServerProcess>(dir_, extra_flags_);
    admin_ = server_->CreateToken("root", "admin");
    alice_ = server_->CreateToken("alice", "user");
    bob_ = server_->CreateToken("bob", "user");
    worker_ = server_->CreateToken("w", "worker");
    server_->Start();
    Connect();
  }
  void Connect() {
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    runs_ = v1::RunService::NewStub(channel);
    admin_stub_ = v1::AdminService::NewStub(channel);
  }
  grpc::Status Submit(const std::string& token, v1::SubmitRunResponse* response,
                      const std::string& spec = kSpec) {
    v1::SubmitRunRequest request;
    request.set_spec_text(spec);
    return runs_->SubmitRun(Ctx(token).get(), request, response);
  }

  std::filesystem::path dir_;
  std::vector<std::string> extra_flags_;
  std::unique_ptr<ServerProcess> server_;
  std::string admin_, alice_, bob_, worker_;
  std::unique_ptr<v1::RunService::Stub> runs_;
  std::unique_ptr<v1::AdminService::Stub> admin_stub_;
};

TEST_F(ServerBinaryTest, TokenCreatePrintsOnlyTheToken) {
  EXPECT_EQ(admin_.rfind("pdl_", 0), 0u) << admin_;
  EXPECT_EQ(admin_.find('\n'), std::string::npos);
  EXPECT_NE(admin_, alice_);
  std::string out;
  EXPECT_EQ(RunCommand({ServerBinary().string(), "token", "create", "--db", server_->db(), "--user", "x",
                        "--role", "superuser"},
                       &out, dir_),
            2);
  EXPECT_TRUE(out.empty());
}

TEST_F(ServerBinaryTest, SubmitGetListCancel) {
  v1::SubmitRunResponse submitted;
  grpc::Status s = Submit(alice_, &submitted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(submitted.run_ids_size(), 1);
  const int64_t id = submitted.run_ids(0);

  v1::GetRunRequest get;
  get.set_run_id(id);
  v1::Run run;
  ASSERT_TRUE(runs_->GetRun(Ctx(alice_).get(), get, &run).ok());
  EXPECT_EQ(run.state(), v1::QUEUED);
  EXPECT_EQ(run.owner(), "alice");
  EXPECT_EQ(run.spec().name(), "integration");

  v1::ListRunsResponse listed;
  ASSERT_TRUE(runs_->ListRuns(Ctx(alice_).get(), v1::ListRunsRequest(), &listed).ok());
  ASSERT_EQ(listed.runs_size(), 1);
  EXPECT_EQ(listed.runs(0).id(), id);

  v1::CancelRunRequest cancel;
  cancel.set_run_id(id);
  ASSERT_TRUE(runs_->CancelRun(Ctx(alice_).get(), cancel, &run).ok());
  EXPECT_EQ(run.state(), v1::CANCELLED);
  ASSERT_TRUE(runs_->GetRun(Ctx(alice_).get(), get, &run).ok());
  EXPECT_EQ(run.state(), v1::CANCELLED);
}

TEST_F(ServerBinaryTest, BadSpecIsRejectedNamingTheField) {
  v1::SubmitRunResponse response;
  grpc::Status s = Submit(alice_, &response, std::string(kSpec) + "resources: {gpus: 99}\n");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("resources.gpus"), std::string::npos) << s.error_message();
}

TEST_F(ServerBinaryTest, AuthFailures) {
  v1::SubmitRunResponse response;
  EXPECT_EQ(Submit("", &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Submit("pdl_wrong", &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Submit(worker_, &response).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Submit(alice_, &response).ok());
  v1::GetRunRequest get;
  get.set_run_id(response.run_ids(0));
  v1::Run run;
  EXPECT_EQ(runs_->GetRun(Ctx(bob_).get(), get, &run).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(runs_->GetRun(Ctx(admin_).get(), get, &run).ok());
  v1::CancelRunRequest cancel;
  cancel.set_run_id(response.run_ids(0));
  EXPECT_EQ(runs_->CancelRun(Ctx(bob_).get(), cancel, &run).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::ListUsersResponse users;
  EXPECT_EQ(admin_stub_->ListUsers(Ctx(alice_).get(), v1::ListUsersRequest(), &users).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(admin_stub_->ListUsers(Ctx(admin_).get(), v1::ListUsersRequest(), &users).ok());
  EXPECT_EQ(users.users_size(), 4);

  // Revocation takes effect on the next call.
  v1::ListTokensResponse tokens;
  v1::ListTokensRequest mine;
  mine.set_user("bob");
  ASSERT_TRUE(admin_stub_->ListTokens(Ctx(admin_).get(), mine, &tokens).ok());
  ASSERT_EQ(tokens.tokens_size(), 1);
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(tokens.tokens(0).id());
  v1::RevokeTokenResponse revoked;
  ASSERT_TRUE(admin_stub_->RevokeToken(Ctx(admin_).get(), revoke, &revoked).ok());
  EXPECT_EQ(Submit(bob_, &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ServerBinaryTest, SigkilledServerRestartedLosesNoAcceptedRun) {
  std::vector<int64_t> accepted;
  for (int i = 0; i < 40; ++i) {
    v1::SubmitRunResponse response;
    grpc::Status s = Submit(i % 2 ? alice_ : bob_, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    accepted.push_back(response.run_ids(0));
  }
  EXPECT_EQ(server_->Kill(SIGKILL), 128 + SIGKILL);
  server_->Start();
  Connect();
  v1::ListRunsRequest request;
  request.set_page_size(1000);
  v1::ListRunsResponse listed;
  ASSERT_TRUE(runs_->ListRuns(Ctx(admin_).get(), request, &listed).ok());
  std::set<int64_t> found;
  for (const auto& r : listed.runs()) {
    EXPECT_EQ(r.state(), v1::QUEUED);
    found.insert(r.id());
  }
  for (int64_t id : accepted) EXPECT_EQ(found.count(id), 1u) << "run " << id << " lost";
  EXPECT_EQ(found.size(), accepted.size());
}

TEST_F(ServerBinaryTest, SigtermShutsDownCleanly) {
  v1::SubmitRunResponse response;
  ASSERT_TRUE(Submit(alice_, &response).ok());
  absl::Time start = absl::Now();
  EXPECT_EQ(server_->Kill(SIGTERM), 0) << server_->Log();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_NE(server_->Log().find("server stopped"), std::string::npos) << server_->Log();
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  (void)!write(fd, request.data(), request.size());
  std::string body;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) body.append(buf, n);
  close(fd);
  return body;
}

class ServerMetricsBinaryTest : public ServerBinaryTest {
 protected:
  void SetUp() override {
    metrics_port_ = FreePort();
    extra_flags_ = {"--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port_)};
    ServerBinaryTest::SetUp();
  }
  int metrics_port_ = 0;
};

TEST_F(ServerMetricsBinaryTest, PrometheusSeesQueuedRunsPerStateAndUser) {
  v1::SubmitRunResponse response;
  ASSERT_TRUE(Submit(alice_, &response).ok());
  ASSERT_TRUE(Submit(alice_, &response).ok());
  std::string body;
  absl::Time end = absl::Now() + absl::Seconds(10);
  while (absl::Now() < end) {
    body = HttpGet(metrics_port_, "/metrics");
    if (body.find("pendulum_queue_depth{user=\"alice\"} 2") != std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_NE(body.find("pendulum_runs{state=\"QUEUED\"} 2"), std::string::npos) << body;
  EXPECT_NE(body.find("pendulum_queue_depth{user=\"alice\"} 2"), std::string::npos) << body;
  EXPECT_NE(body.find("pendulum_scheduling_latency_seconds_count"), std::string::npos) << body;
}

}  // namespace
}  // namespace pendulum::testing
