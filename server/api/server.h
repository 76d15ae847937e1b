#pragma once
// Server: pendulum-server as an object. Start() opens and migrates the
// database, loads the live state, starts the ingestion writer, the scheduler,
// the housekeeping thread (leases, gauges), the optional Prometheus exposer
// and the gRPC server (callback API: no thread per RPC). Shutdown() is the one
// function that owns teardown order: worker streams and watches closed, gRPC
// server shut down with a deadline, housekeeping and scheduler stopped, the
// ingestion writer drained, the database closed.
// Threads: Start/Shutdown/Wait from the owning thread; port()/coordinator()
// from any. Tests link exactly this (main.cc only parses flags and signals).

#include <filesystem>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/server.h"
#include "server/api/admin_service_impl.h"
#include "server/api/coordinator.h"
#include "server/api/run_service_impl.h"
#include "server/api/server_options.h"
#include "server/api/worker_service_impl.h"
#include "server/auth/authenticator.h"
#include "server/auth/rate_limiter.h"
#include "server/metrics/server_metrics.h"
#include "server/scheduler/scheduler.h"
#include "server/store/database.h"
#include "server/store/metric_reader.h"
#include "server/store/token_store.h"
#include "server/store/user_store.h"

namespace pendulum::api {

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();  // Shutdown()s.
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound gRPC port (the chosen one when --listen asked for port 0).
  int port() const { return port_; }
  // "host:port" clients should dial.
  std::string address() const;
  // The bound port of the Prometheus exposer (0 when --metrics-listen is off).
  int metrics_port() const { return metrics_ == nullptr ? 0 : metrics_->exposer_port(); }

  // Stops everything in order; idempotent. `grace` bounds how long in-flight
  // RPCs may take before they are cancelled.
  void Shutdown(absl::Duration grace = absl::Seconds(3));

  Coordinator* coordinator() { return coordinator_.get(); }
  scheduler::Scheduler* scheduler() { return scheduler_.get(); }
  store::MetricIngestor* ingestor() { return ingestor_.get(); }
  metrics::ServerMetrics* metrics() { return metrics_.get(); }

 private:
  explicit Server(ServerOptions options) : options_(std::move(options)) {}
  absl::Status Init();
  void Housekeeping();

  const ServerOptions options_;
  int port_ = 0;
  // Declaration order = construction order; Shutdown() tears down explicitly
  // in the documented order, and the destructor then frees in reverse.
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<store::RunStore> runs_;
  std::unique_ptr<store::UserStore> users_;
  std::unique_ptr<store::TokenStore> tokens_;
  std::unique_ptr<store::WorkerStore> workers_;
  std::unique_ptr<store::ArtifactStore> artifacts_;
  std::unique_ptr<store::MetricReader> reader_;
  std::unique_ptr<metrics::ServerMetrics> metrics_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<store::MetricIngestor> ingestor_;  // callbacks call coordinator_
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  std::unique_ptr<auth::RateLimiter> rate_limiter_;
  std::unique_ptr<auth::Authenticator> authenticator_;  // borrows rate_limiter_
  std::unique_ptr<RunServiceImpl> run_service_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<grpc::Server> grpc_server_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ = false;  // owner thread only
  std::thread housekeeping_;
};

}  // namespace pendulum::api
