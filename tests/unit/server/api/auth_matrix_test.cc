// Every RPC of every service, called with no token, a wrong token, a revoked
// token and each role: the role table is enforced on each one.
#include <functional>
#include <set>

#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "tests/unit/server/api/api_test_env.h"

namespace pendulum::testing {
namespace {

using Call = std::function<grpc::Status(ApiTestEnv&, grpc::ClientContext*)>;

struct Rpc {
  std::string name;
  std::string service;  // "run", "admin", "worker"
  Call call;
};

template <typename Req, typename Resp, typename StubPtr, typename Method>
Call UnaryCall(StubPtr ApiTestEnv::*stub, Method method, Req request = Req()) {
  return [=](ApiTestEnv& env, grpc::ClientContext* context) {
    Resp response;
    return ((env.*stub).get()->*method)(context, request, &response);
  };
}

std::vector<Rpc> AllRpcs() {
  using namespace v1;
  std::vector<Rpc> rpcs;
  auto run = &ApiTestEnv::runs_;
  auto admin = &ApiTestEnv::admin_;
  auto worker = &ApiTestEnv::workers_;
  GetRunRequest get;
  get.set_run_id(1);
  rpcs.push_back({"SubmitRun", "run", [](ApiTestEnv& env, grpc::ClientContext* c) {
                    SubmitRunRequest r;
                    r.set_spec_text(kQuickSpec);
                    SubmitRunResponse resp;
                    return env.runs_->SubmitRun(c, r, &resp);
                  }});
  rpcs.push_back({"GetRun", "run", UnaryCall<GetRunRequest, Run>(run, &RunService::Stub::GetRun, get)});
  rpcs.push_back({"ListRuns", "run", UnaryCall<ListRunsRequest, ListRunsResponse>(run, &RunService::Stub::ListRuns)});
  CancelRunRequest cancel;
  cancel.set_run_id(1);
  rpcs.push_back({"CancelRun", "run", UnaryCall<CancelRunRequest, Run>(run, &RunService::Stub::CancelRun, cancel)});
  rpcs.push_back({"WatchRun", "run", [](ApiTestEnv& env, grpc::ClientContext* c) {
                    WatchRunRequest r;
                    r.set_run_id(1);
                    auto reader = env.runs_->WatchRun(c, r);
                    RunUpdate u;
                    while (reader->Read(&u)) {
                      c->TryCancel();  // the run is queued: one update is enough
                    }
                    grpc::Status s = reader->Finish();
                    return s.error_code() == grpc::StatusCode::CANCELLED ? grpc::Status::OK : s;
                  }});
  QueryMetricsRequest qm;
  qm.set_run_id(1);
  rpcs.push_back({"QueryMetrics", "run",
                  UnaryCall<QueryMetricsRequest, QueryMetricsResponse>(run, &RunService::Stub::QueryMetrics, qm)});
  QueryOscillationRequest qo;
  qo.set_run_id(1);
  rpcs.push_back({"QueryOscillation", "run",
                  UnaryCall<QueryOscillationRequest, QueryOscillationResponse>(
                      run, &RunService::Stub::QueryOscillation, qo)});
  RequestCheckpointRequest rc;
  rc.set_run_id(1);
  rpcs.push_back({"RequestCheckpoint", "run",
                  UnaryCall<RequestCheckpointRequest, RequestCheckpointResponse>(
                      run, &RunService::Stub::RequestCheckpoint, rc)});
  rpcs.push_back({"RunService.ListWorkers", "run",
                  UnaryCall<ListWorkersRequest, ListWorkersResponse>(run, &RunService::Stub::ListWorkers)});
  rpcs.push_back({"FetchArtifact", "run", [](ApiTestEnv& env, grpc::ClientContext* c) {
                    FetchArtifactRequest r;
                    r.set_run_id(1);
                    r.set_name("none.pt");  // allowed callers get NOT_FOUND: run 1 has no artifacts
                    auto reader = env.runs_->FetchArtifact(c, r);
                    ArtifactData d;
                    while (reader->Read(&d)) {
                    }
                    return reader->Finish();
                  }});

  CreateUserRequest cu;
  cu.set_name("carol");
  cu.set_role(USER);
  rpcs.push_back({"CreateUser", "admin", UnaryCall<CreateUserRequest, User>(admin, &AdminService::Stub::CreateUser, cu)});
  rpcs.push_back({"ListUsers", "admin",
                  UnaryCall<ListUsersRequest, ListUsersResponse>(admin, &AdminService::Stub::ListUsers)});
  SetUserQuotaRequest sq;
  sq.set_name("nobody");
  sq.set_gpu_quota(2);
  rpcs.push_back({"SetUserQuota", "admin",
                  UnaryCall<SetUserQuotaRequest, User>(admin, &AdminService::Stub::SetUserQuota, sq)});
  CreateTokenRequest ct;
  ct.set_user("dave");
  ct.set_role(USER);
  rpcs.push_back({"CreateToken", "admin",
                  UnaryCall<CreateTokenRequest, CreateTokenResponse>(admin, &AdminService::Stub::CreateToken, ct)});
  rpcs.push_back({"ListTokens", "admin",
                  UnaryCall<ListTokensRequest, ListTokensResponse>(admin, &AdminService::Stub::ListTokens)});
  RevokeTokenRequest rt;
  rt.set_token_id(999);
  rpcs.push_back({"RevokeToken", "admin",
                  UnaryCall<RevokeTokenRequest, RevokeTokenResponse>(admin, &AdminService::Stub::RevokeToken, rt)});
  rpcs.push_back({"AdminService.ListWorkers", "admin",
                  UnaryCall<ListWorkersRequest, ListWorkersResponse>(admin, &AdminService::Stub::ListWorkers)});
  DrainWorkerRequest dw;
  dw.set_worker_id("nope");
  rpcs.push_back({"DrainWorker", "admin",
                  UnaryCall<DrainWorkerRequest, WorkerInfo>(admin, &AdminService::Stub::DrainWorker, dw)});
  rpcs.push_back({"UndrainWorker", "admin",
                  UnaryCall<DrainWorkerRequest, WorkerInfo>(admin, &AdminService::Stub::UndrainWorker, dw)});
  rpcs.push_back({"GetPoolStatus", "admin",
                  UnaryCall<GetPoolStatusRequest, PoolStatus>(admin, &AdminService::Stub::GetPoolStatus)});

  RegisterRequest reg;
  reg.set_worker_id("w-auth");
  reg.set_slots(1);
  rpcs.push_back({"Register", "worker",
                  UnaryCall<RegisterRequest, RegisterResponse>(worker, &WorkerService::Stub::Register, reg)});
  rpcs.push_back({"Connect", "worker", [](ApiTestEnv& env, grpc::ClientContext* c) {
                    auto stream = env.workers_->Connect(c);
                    WorkerMessage hello;
                    hello.mutable_hello()->set_worker_id("never-registered");
                    stream->Write(hello);
                    stream->WritesDone();
                    ServerMessage m;
                    while (stream->Read(&m)) {
                    }
                    return stream->Finish();
                  }});
  rpcs.push_back({"UploadArtifact", "worker", [](ApiTestEnv& env, grpc::ClientContext* c) {
                    ArtifactInfo info;
                    auto writer = env.workers_->UploadArtifact(c, &info);
                    ArtifactChunk chunk;
                    chunk.mutable_header()->set_run_id(999);
                    chunk.mutable_header()->set_kind("checkpoint");
                    chunk.mutable_header()->set_sha256(std::string(64, '0'));
                    writer->Write(chunk);
                    writer->WritesDone();
                    return writer->Finish();
                  }});
  rpcs.push_back({"DownloadArtifact", "worker", [](ApiTestEnv& env, grpc::ClientContext* c) {
                    DownloadArtifactRequest r;
                    r.set_id("12345");
                    auto reader = env.workers_->DownloadArtifact(c, r);
                    ArtifactChunk chunk;
                    while (reader->Read(&chunk)) {
                    }
                    return reader->Finish();
                  }});
  return rpcs;
}

bool IsAuthFailure(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         s.error_code() == grpc::StatusCode::PERMISSION_DENIED;
}

// Parameter: the server serves TLS (self-signed certificate made at test time).
class AuthMatrixTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) env_.UseTls();
    env_.StartServer();
    // Run 1 exists (alice's), so "allowed" calls reach real logic.
    ASSERT_EQ(env_.Submit(env_.alice_token_), 1);
  }
  ApiTestEnv env_;
};

// The matrix is only as good as its list: every method of every service in
// the API must be in it, so a new RPC cannot slip in untested.
TEST(AuthMatrixCoverage, EveryRpcOfEveryServiceIsInTheMatrix) {
  std::set<std::string> listed;
  for (const Rpc& rpc : AllRpcs()) {
    const std::string base = rpc.name.substr(rpc.name.find('.') + 1);  // "RunService.ListWorkers"
    listed.insert(base);
  }
  for (const char* name : {"pendulum.v1.RunService", "pendulum.v1.AdminService", "pendulum.v1.WorkerService"}) {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      EXPECT_EQ(listed.count(service->method(i)->name()), 1u)
          << service->name() << "." << service->method(i)->name() << " is missing from the auth matrix";
    }
  }
}

TEST_P(AuthMatrixTest, NoTokenWrongTokenAndRevokedTokenAreUnauthenticated) {
  v1::CreateTokenRequest create;
  create.set_user("mallory");
  create.set_role(v1::ADMIN);
  v1::CreateTokenResponse revoked;
  ASSERT_TRUE(env_.admin_->CreateToken(ApiTestEnv::Context(env_.admin_token_).get(), create, &revoked).ok());
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(revoked.token_id());
  v1::RevokeTokenResponse ignored;
  ASSERT_TRUE(env_.admin_->RevokeToken(ApiTestEnv::Context(env_.admin_token_).get(), revoke, &ignored).ok());

  for (const Rpc& rpc : AllRpcs()) {
    for (const std::string& token : {std::string(), std::string("pdl_not-a-real-token"), revoked.token()}) {
      auto context = ApiTestEnv::Context(token);
      grpc::Status s = rpc.call(env_, context.get());
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << rpc.name << " with token '" << token << "': " << s.error_message();
    }
  }
  auto context = std::make_unique<grpc::ClientContext>();
  context->AddMetadata("authorization", "Basic " + env_.admin_token_);
  v1::ListRunsResponse r;
  grpc::Status s = env_.runs_->ListRuns(context.get(), v1::ListRunsRequest(), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("Bearer"), std::string::npos) << s.error_message();
}

TEST_P(AuthMatrixTest, EachRoleReachesExactlyItsServices) {
  struct Role {
    std::string name;
    std::string token;
    std::set<std::string> allowed;
  };
  std::vector<Role> roles = {{"admin", env_.admin_token_, {"run", "admin"}},
                             {"user", env_.alice_token_, {"run"}},
                             {"worker", env_.worker_token_, {"worker"}}};
  for (const Role& role : roles) {
    for (const Rpc& rpc : AllRpcs()) {
      auto context = ApiTestEnv::Context(role.token);
      grpc::Status s = rpc.call(env_, context.get());
      if (role.allowed.count(rpc.service) > 0) {
        EXPECT_FALSE(IsAuthFailure(s)) << role.name << " → " << rpc.name << ": " << s.error_message();
        EXPECT_NE(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << rpc.name;
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << role.name << " → " << rpc.name << ": " << s.error_message();
      }
    }
  }
}

// A user sees and cancels only their own runs; an admin sees and cancels all.
// (Another user's run reads as NOT_FOUND, so run ids leak nothing.)
TEST_P(AuthMatrixTest, UsersSeeAndCancelOnlyTheirOwnRunsAdminsAll) {
  const int64_t bobs = env_.Submit(env_.bob_token_);
  ASSERT_GT(bobs, 0);
  v1::GetRunRequest get;
  get.set_run_id(bobs);
  v1::Run run;
  grpc::Status s = env_.runs_->GetRun(ApiTestEnv::Context(env_.alice_token_).get(), get, &run);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  v1::ListRunsResponse list;
  ASSERT_TRUE(env_.runs_->ListRuns(ApiTestEnv::Context(env_.alice_token_).get(), v1::ListRunsRequest(), &list).ok());
  for (const v1::Run& r : list.runs()) EXPECT_EQ(r.owner(), "alice") << "alice sees run " << r.id();
  v1::QueryMetricsRequest qm;
  qm.set_run_id(bobs);
  v1::QueryMetricsResponse metrics;
  s = env_.runs_->QueryMetrics(ApiTestEnv::Context(env_.alice_token_).get(), qm, &metrics);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  v1::CancelRunRequest cancel;
  cancel.set_run_id(bobs);
  s = env_.runs_->CancelRun(ApiTestEnv::Context(env_.alice_token_).get(), cancel, &run);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(env_.Get(env_.bob_token_, bobs).state(), v1::QUEUED) << "alice's cancel must not touch bob's run";

  ASSERT_TRUE(env_.runs_->ListRuns(ApiTestEnv::Context(env_.admin_token_).get(), v1::ListRunsRequest(), &list).ok());
  std::set<std::string> owners;
  for (const v1::Run& r : list.runs()) owners.insert(r.owner());
  EXPECT_EQ(owners, (std::set<std::string>{"alice", "bob"}));
  s = env_.runs_->CancelRun(ApiTestEnv::Context(env_.admin_token_).get(), cancel, &run);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(run.state(), v1::CANCELLED);
}

INSTANTIATE_TEST_SUITE_P(TlsOffAndOn, AuthMatrixTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Tls" : "Plaintext";
                         });

}  // namespace
}  // namespace pendulum::testing
