#pragma once
// ApiTestEnv: a real pendulum Server in-process on 127.0.0.1:0 over a real
// SQLite file in the test's temp dir, tokens for each role, and real stubs.
// Time for leases comes from a SimulatedClock the test advances; the
// housekeeping thread is slowed down so tests call CheckLeases() themselves.
// UseTls() before StartServer() serves TLS with a self-signed certificate.

#include <memory>
#include <string>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "pendulum/v1/admin_service.grpc.pb.h"
#include "pendulum/v1/run_service.grpc.pb.h"
#include "pendulum/v1/worker_service.grpc.pb.h"
#include "server/api/server.h"
#include "server/store/database.h"
#include "server/store/token_store.h"
#include "tests/support/test_paths.h"
#include "tests/unit/server/auth/self_signed_cert.h"
#include "tests/unit/server/scheduler/simulated_clock.h"

namespace pendulum::testing {

inline constexpr char kQuickSpec[] = R"(name: quick
model: {arch: mlp, hidden: [8]}
data: {dataset: synthetic, synthetic: {num_train: 64, num_eval: 16, num_classes: 2, shape: [4]}}
optimizer: {type: sgd, lr: 0.1}
schedule: {epochs: 1, batch_size: 16}
)";

class ApiTestEnv {
 public:
  ApiTestEnv() : dir_(MakeTestTempDir()) {
    options_.db_path = (dir_ / "pendulum.db").string();
    options_.listen = "127.0.0.1:0";
    options_.clock = &clock_;
    options_.housekeeping_interval = absl::Hours(1);
    store::DatabaseOptions db;
    db.path = options_.db_path;
    auto database = store::Database::Open(db);
    EXPECT_TRUE(database.ok()) << database.status();
    store::TokenStore tokens(database->get(), &clock_);
    admin_token_ = tokens.CreateToken("root", v1::ADMIN, "test").value().token;
    alice_token_ = tokens.CreateToken("alice", v1::USER, "test").value().token;
    bob_token_ = tokens.CreateToken("bob", v1::USER, "test").value().token;
    worker_token_ = tokens.CreateToken("worker-1", v1::WORKER, "test").value().token;
  }

  // Serve TLS with a self-signed certificate made now (openssl); clients
  // created by StartServer/ClientCredentials trust it.
  void UseTls() {
    auto cert = MakeSelfSignedCert(dir_);
    ASSERT_TRUE(cert.ok()) << cert.status();
    cert_ = *cert;
    options_.tls_cert = cert_.cert.string();
    options_.tls_key = cert_.key.string();
  }
  bool tls() const { return !options_.tls_cert.empty(); }
  // What a well-configured client dials with (TLS trusting cert_, or plaintext).
  std::shared_ptr<grpc::ChannelCredentials> ClientCredentials() const {
    if (!tls()) return grpc::InsecureChannelCredentials();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = cert_.cert_pem;
    return grpc::SslCredentials(ssl);
  }

  void StartServer() {
    auto server = api::Server::Start(options_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(), ClientCredentials());
    runs_ = v1::RunService::NewStub(channel_);
    admin_ = v1::AdminService::NewStub(channel_);
    workers_ = v1::WorkerService::NewStub(channel_);
  }
  void StopServer() {
    runs_.reset();
    admin_.reset();
    workers_.reset();
    channel_.reset();
    server_.reset();
  }

  // A ClientContext carrying `token` (none when empty), with a deadline.
  static std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
    auto context = std::make_unique<grpc::ClientContext>();
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return context;
  }

  // Submits kQuickSpec (plus overrides) as `token`; returns the run id.
  int64_t Submit(const std::string& token, std::vector<std::string> overrides = {}) {
    v1::SubmitRunRequest request;
    request.set_spec_text(kQuickSpec);
    for (auto& o : overrides) request.add_overrides(o);
    v1::SubmitRunResponse response;
    grpc::Status status = runs_->SubmitRun(Context(token).get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.run_ids_size() > 0 ? response.run_ids(0) : 0;
  }

  v1::Run Get(const std::string& token, int64_t run_id) {
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    v1::Run run;
    grpc::Status status = runs_->GetRun(Context(token).get(), request, &run);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return run;
  }

  std::filesystem::path dir_;
  SelfSignedCert cert_;  // set by UseTls()
  SimulatedClock clock_;
  api::ServerOptions options_;
  std::string admin_token_, alice_token_, bob_token_, worker_token_;
  std::unique_ptr<api::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RunService::Stub> runs_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
};

// Polls `done` for up to `timeout` (real time), for asynchronous effects.
inline bool Eventually(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10)) {
  absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return done();
}

}  // namespace pendulum::testing
