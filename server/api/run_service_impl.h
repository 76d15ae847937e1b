#pragma once
// RunService over the Coordinator and the store's readers (callback API:
// unary handlers finish inline; WatchRun is a write reactor fed by the
// Coordinator's updates, one write in flight). Every call is authenticated;
// users see only their own runs (someone else's run is NOT_FOUND).
// Threads: handlers run on gRPC's callback threads; the class is stateless
// beyond its borrowed collaborators.

#include "pendulum/v1/run_service.grpc.pb.h"
#include "server/api/coordinator.h"
#include "server/auth/authenticator.h"
#include "server/store/metric_reader.h"
#include "server/store/run_store.h"

namespace pendulum::api {

class RunServiceImpl final : public pendulum::v1::RunService::CallbackService {
 public:
  RunServiceImpl(const auth::Authenticator* authenticator, Coordinator* coordinator,
                 store::RunStore* runs, store::MetricReader* reader)
      : authenticator_(authenticator), coordinator_(coordinator), runs_(runs), reader_(reader) {}

  grpc::ServerUnaryReactor* SubmitRun(grpc::CallbackServerContext* context,
                                      const pendulum::v1::SubmitRunRequest* request,
                                      pendulum::v1::SubmitRunResponse* response) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* context,
                                   const pendulum::v1::GetRunRequest* request,
                                   pendulum::v1::Run* response) override;
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* context,
                                     const pendulum::v1::ListRunsRequest* request,
                                     pendulum::v1::ListRunsResponse* response) override;
  grpc::ServerUnaryReactor* CancelRun(grpc::CallbackServerContext* context,
                                      const pendulum::v1::CancelRunRequest* request,
                                      pendulum::v1::Run* response) override;
  grpc::ServerWriteReactor<pendulum::v1::RunUpdate>* WatchRun(
      grpc::CallbackServerContext* context, const pendulum::v1::WatchRunRequest* request) override;
  grpc::ServerUnaryReactor* QueryMetrics(grpc::CallbackServerContext* context,
                                         const pendulum::v1::QueryMetricsRequest* request,
                                         pendulum::v1::QueryMetricsResponse* response) override;
  grpc::ServerUnaryReactor* QueryOscillation(grpc::CallbackServerContext* context,
                                             const pendulum::v1::QueryOscillationRequest* request,
                                             pendulum::v1::QueryOscillationResponse* response) override;
  grpc::ServerUnaryReactor* RequestCheckpoint(grpc::CallbackServerContext* context,
                                              const pendulum::v1::RequestCheckpointRequest* request,
                                              pendulum::v1::RequestCheckpointResponse* response) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* context,
                                        const pendulum::v1::ListWorkersRequest* request,
                                        pendulum::v1::ListWorkersResponse* response) override;
  grpc::ServerWriteReactor<pendulum::v1::ArtifactData>* FetchArtifact(
      grpc::CallbackServerContext* context, const pendulum::v1::FetchArtifactRequest* request) override;

 private:
  const auth::Authenticator* authenticator_;
  Coordinator* coordinator_;
  store::RunStore* runs_;
  store::MetricReader* reader_;
};

}  // namespace pendulum::api
