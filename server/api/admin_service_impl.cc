#include "server/api/admin_service_impl.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/api/call_auth.h"
#include "server/api/status_util.h"

namespace pendulum::api {
namespace {

constexpr char kService[] = "/pendulum.v1.AdminService/";

template <typename Body>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, Body&& body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(body()));
  return reactor;
}

absl::Status CheckRole(pendulum::v1::Role role, const char* field) {
  if (role == pendulum::v1::ADMIN || role == pendulum::v1::USER || role == pendulum::v1::WORKER) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": got ", pendulum::v1::Role_Name(role), ", must be ADMIN, USER or WORKER"));
}

}  // namespace

#define PENDULUM_ADMIN_CALL(name)                                                      \
  PENDULUM_ASSIGN_OR_RETURN(auth::Principal who,                                       \
                            AuthorizeCall(*authenticator_, context, absl::StrCat(kService, name))); \
  (void)who

grpc::ServerUnaryReactor* AdminServiceImpl::CreateUser(grpc::CallbackServerContext* context,
                                                       const pendulum::v1::CreateUserRequest* request,
                                                       pendulum::v1::User* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ADMIN_CALL("CreateUser");
    PENDULUM_RETURN_IF_ERROR(CheckRole(request->role(), "role"));
    PENDULUM_ASSIGN_OR_RETURN(*response,
                              users_->CreateUser(request->name(), request->role(), request->gpu_quota()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetUserQuota(grpc::CallbackServerContext* context,
                                                         const pendulum::v1::SetUserQuotaRequest* request,
                                                         pendulum::v1::User* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ADMIN_CALL("SetUserQuota");
    PENDULUM_RETURN_IF_ERROR(users_->SetGpuQuota(request->name(), request->gpu_quota()));
    // The coordinator reads quotas from the store on every scheduling pass.
    PENDULUM_ASSIGN_OR_RETURN(*response, users_->GetUser(request->name()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListUsers(grpc::CallbackServerContext* context,
                                                      const pendulum::v1::ListUsersRequest* request,
                                                      pendulum::v1::ListUsersResponse* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ADMIN_CALL("ListUsers");
    PENDULUM_ASSIGN_OR_RETURN(std::vector<pendulum::v1::User> users, users_->ListUsers());
    for (auto& u : users) *response->add_users() = std::move(u);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateToken(grpc::CallbackServerContext* context,
                                                        const pendulum::v1::CreateTokenRequest* request,
                                                        pendulum::v1::CreateTokenResponse* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ADMIN_CALL("CreateToken");
    PENDULUM_RETURN_IF_ERROR(CheckRole(request->role(), "role"));
    PENDULUM_ASSIGN_OR_RETURN(store::NewToken token,
                              tokens_->CreateToken(request->user(), request->role(), request->description()));
    response->set_token(token.token);
    response->set_token_id(token.info.id());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTokens(grpc::CallbackServerContext* context,
                                                       const pendulum::v1::ListTokensRequest* request,
                                                       pendulum::v1::ListTokensResponse* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ADMIN_CALL("ListTokens");
    PENDULUM_ASSIGN_OR_RETURN(std::vector<pendulum::v1::TokenInfo> tokens,
                              tokens_->ListTokens(request->user()));
    for (auto& t : tokens) *response->add_tokens() = std::move(t);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeToken(grpc::CallbackServerContext* context,
                                                        const pendulum::v1::RevokeTokenRequest* request,
                                                        pendulum::v1::RevokeTokenResponse* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ADMIN_CALL("RevokeToken");
    return tokens_->RevokeToken(request->token_id());
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListWorkers(grpc::CallbackServerContext* context,
                                                        const pendulum::v1::ListWorkersRequest* request,
                                                        pendulum::v1::ListWorkersResponse* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ADMIN_CALL("ListWorkers");
    PENDULUM_ASSIGN_OR_RETURN(std::vector<pendulum::v1::WorkerInfo> workers, coordinator_->ListWorkers());
    for (auto& w : workers) *response->add_workers() = std::move(w);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::DrainWorker(grpc::CallbackServerContext* context,
                                                        const pendulum::v1::DrainWorkerRequest* request,
                                                        pendulum::v1::WorkerInfo* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ADMIN_CALL("DrainWorker");
    PENDULUM_ASSIGN_OR_RETURN(*response, coordinator_->SetDraining(request->worker_id(), true));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::UndrainWorker(grpc::CallbackServerContext* context,
                                                          const pendulum::v1::DrainWorkerRequest* request,
                                                          pendulum::v1::WorkerInfo* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ADMIN_CALL("UndrainWorker");
    PENDULUM_ASSIGN_OR_RETURN(*response, coordinator_->SetDraining(request->worker_id(), false));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetPoolStatus(grpc::CallbackServerContext* context,
                                                          const pendulum::v1::GetPoolStatusRequest* request,
                                                          pendulum::v1::PoolStatus* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ADMIN_CALL("GetPoolStatus");
    *response = coordinator_->PoolStatus();
    return absl::OkStatus();
  });
}

#undef PENDULUM_ADMIN_CALL

}  // namespace pendulum::api
