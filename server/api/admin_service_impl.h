#pragma once
// AdminService (admin role only): users, tokens, workers and pool status over
// the stores and the Coordinator. Unary callback handlers; stateless.

#include "pendulum/v1/admin_service.grpc.pb.h"
#include "server/api/coordinator.h"
#include "server/auth/authenticator.h"
#include "server/store/token_store.h"
#include "server/store/user_store.h"

namespace pendulum::api {

class AdminServiceImpl final : public pendulum::v1::AdminService::CallbackService {
 public:
  AdminServiceImpl(const auth::Authenticator* authenticator, Coordinator* coordinator,
                   store::UserStore* users, store::TokenStore* tokens)
      : authenticator_(authenticator), coordinator_(coordinator), users_(users), tokens_(tokens) {}

  grpc::ServerUnaryReactor* SetUserQuota(grpc::CallbackServerContext* context,
                                         const pendulum::v1::SetUserQuotaRequest* request,
                                         pendulum::v1::User* response) override;
  grpc::ServerUnaryReactor* CreateUser(grpc::CallbackServerContext* context,
                                       const pendulum::v1::CreateUserRequest* request,
                                       pendulum::v1::User* response) override;
  grpc::ServerUnaryReactor* ListUsers(grpc::CallbackServerContext* context,
                                      const pendulum::v1::ListUsersRequest* request,
                                      pendulum::v1::ListUsersResponse* response) override;
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* context,
                                        const pendulum::v1::CreateTokenRequest* request,
                                        pendulum::v1::CreateTokenResponse* response) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* context,
                                       const pendulum::v1::ListTokensRequest* request,
                                       pendulum::v1::ListTokensResponse* response) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* context,
                                        const pendulum::v1::RevokeTokenRequest* request,
                                        pendulum::v1::RevokeTokenResponse* response) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* context,
                                        const pendulum::v1::ListWorkersRequest* request,
                                        pendulum::v1::ListWorkersResponse* response) override;
  grpc::ServerUnaryReactor* DrainWorker(grpc::CallbackServerContext* context,
                                        const pendulum::v1::DrainWorkerRequest* request,
                                        pendulum::v1::WorkerInfo* response) override;
  grpc::ServerUnaryReactor* UndrainWorker(grpc::CallbackServerContext* context,
                                          const pendulum::v1::DrainWorkerRequest* request,
                                          pendulum::v1::WorkerInfo* response) override;
  grpc::ServerUnaryReactor* GetPoolStatus(grpc::CallbackServerContext* context,
                                          const pendulum::v1::GetPoolStatusRequest* request,
                                          pendulum::v1::PoolStatus* response) override;

 private:
  const auth::Authenticator* authenticator_;
  Coordinator* coordinator_;
  store::UserStore* users_;
  store::TokenStore* tokens_;
};

}  // namespace pendulum::api
