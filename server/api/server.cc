#include "server/api/server.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace pendulum::api {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(flag, ": cannot read '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  if (pem.find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": '", path, "' is not a PEM file"));
  }
  return pem;
}

// TLS when --tls-cert/--tls-key are given, plaintext otherwise.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(const ServerOptions& options) {
  if (options.tls_cert.empty() && options.tls_key.empty()) return grpc::InsecureServerCredentials();
  if (options.tls_cert.empty() || options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
  }
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  PENDULUM_ASSIGN_OR_RETURN(pair.cert_chain, ReadPem("--tls-cert", options.tls_cert));
  PENDULUM_ASSIGN_OR_RETURN(pair.private_key, ReadPem("--tls-key", options.tls_key));
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  std::unique_ptr<Server> server(new Server(options));
  absl::Status s = server->Init();
  if (!s.ok()) {
    server->Shutdown(absl::ZeroDuration());
    return s;
  }
  return server;
}

std::string Server::address() const {
  std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
  return absl::StrCat(host, ":", port_);
}

absl::Status Server::Init() {
  const Clock* clock = options_.clock;
  store::DatabaseOptions db_options;
  db_options.path = options_.db_path;
  PENDULUM_ASSIGN_OR_RETURN(db_, store::Database::Open(db_options));
  runs_ = std::make_unique<store::RunStore>(db_.get(), clock);
  users_ = std::make_unique<store::UserStore>(db_.get(), clock);
  tokens_ = std::make_unique<store::TokenStore>(db_.get(), clock);
  workers_ = std::make_unique<store::WorkerStore>(db_.get(), clock);
  artifacts_ = std::make_unique<store::ArtifactStore>(db_.get(), clock);
  reader_ = std::make_unique<store::MetricReader>(db_.get());

  std::filesystem::path artifact_dir = options_.artifacts_dir;
  if (artifact_dir.empty()) {
    artifact_dir = std::filesystem::absolute(options_.db_path).parent_path() / "artifacts";
  }
  std::error_code ec;
  std::filesystem::create_directories(artifact_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("--artifacts: cannot create '", artifact_dir.string(), "': ", ec.message()));
  }

  metrics_ = std::make_unique<metrics::ServerMetrics>();
  if (!options_.metrics_listen.empty()) {
    PENDULUM_RETURN_IF_ERROR(metrics_->StartExposer(options_.metrics_listen));
  }

  CoordinatorOptions coordinator_options;
  coordinator_options.lease = absl::Seconds(options_.lease_seconds);
  coordinator_options.heartbeat = absl::Seconds(options_.heartbeat_seconds);
  coordinator_options.cancel_grace_seconds = options_.cancel_grace_seconds;
  // The ingestor is created after the coordinator (its callbacks call into
  // it) but the coordinator needs the ingestor's pointer: fill it in below.
  Coordinator::Deps deps{runs_.get(), workers_.get(), artifacts_.get(), nullptr, metrics_.get(), clock};
  PENDULUM_ASSIGN_OR_RETURN(ingestor_, store::MetricIngestor::Start(db_.get(), clock));
  deps.ingestor = ingestor_.get();
  deps.users = users_.get();  // per-user GPU quotas
  coordinator_ = std::make_unique<Coordinator>(deps, coordinator_options);
  PENDULUM_RETURN_IF_ERROR(coordinator_->Load());

  metrics::ServerMetrics* metrics = metrics_.get();
  scheduler_ = std::make_unique<scheduler::Scheduler>(
      coordinator_.get(), clock, [metrics](absl::Duration latency, const scheduler::PlacementPlan&) {
        metrics->ObserveSchedulingLatency(absl::ToDoubleSeconds(latency));
      });
  coordinator_->set_scheduler(scheduler_.get());

  auth::RateLimitOptions rate;
  rate.per_second = options_.rate_limit_per_second;
  rate.burst = options_.rate_burst;
  // Real time even when leases run on a simulated clock: the limit protects
  // the real server from real callers.
  rate_limiter_ = std::make_unique<auth::RateLimiter>(rate, RealClock::Get());
  authenticator_ = std::make_unique<auth::Authenticator>(tokens_.get(), rate_limiter_.get());
  run_service_ = std::make_unique<RunServiceImpl>(authenticator_.get(), coordinator_.get(), runs_.get(),
                                                  reader_.get());
  admin_service_ = std::make_unique<AdminServiceImpl>(authenticator_.get(), coordinator_.get(),
                                                      users_.get(), tokens_.get());
  worker_service_ = std::make_unique<WorkerServiceImpl>(authenticator_.get(), coordinator_.get(),
                                                        runs_.get(), artifacts_.get(), artifact_dir);

  grpc::ServerBuilder builder;
  PENDULUM_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, MakeCredentials(options_));
  builder.AddListeningPort(options_.listen, credentials, &port_);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  builder.RegisterService(run_service_.get());
  builder.RegisterService(admin_service_.get());
  builder.RegisterService(worker_service_.get());
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "--listen: cannot listen on '", options_.listen, "'",
        options_.tls_cert.empty() ? ""
                                  : " (or --tls-cert/--tls-key do not hold a matching certificate and key)"));
  }
  scheduler_->Start();
  housekeeping_ = std::thread([this] { Housekeeping(); });
  PENDULUM_LOG(INFO) << "serving on " << address() << (options_.tls_cert.empty() ? " (plaintext" : " (TLS")
                     << ", rate limit "
                     << (rate_limiter_->enabled() ? absl::StrCat(options_.rate_limit_per_second, "/s per token")
                                                  : std::string("off"))
                     << ", max message " << options_.max_message_bytes << " bytes; db " << options_.db_path << ", artifacts "
                     << artifact_dir.string() << ")";
  return absl::OkStatus();
}

void Server::Housekeeping() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.housekeeping_interval);
    if (stopping_) break;
    // Both take the coordinator's lock; do not hold ours meanwhile.
    mu_.Unlock();
    coordinator_->CheckLeases();
    coordinator_->RefreshGauges();
    mu_.Lock();
  }
}

void Server::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  // 1. RPCs: end long-lived streams ourselves (they never end on their own),
  //    then let in-flight calls finish within the grace period.
  if (grpc_server_ != nullptr) {
    coordinator_->CloseAllStreams();
    grpc_server_->Shutdown(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
  }
  // 2. Background threads that change state.
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (housekeeping_.joinable()) housekeeping_.join();
  if (scheduler_ != nullptr) scheduler_->Stop();
  // 3. Drain the writer: every accepted batch is committed (acks to closed
  //    streams are dropped; workers resend, INSERT OR IGNORE dedups).
  ingestor_.reset();
  // 4. Close the database last (stores only borrow it).
  grpc_server_.reset();
  run_service_.reset();
  admin_service_.reset();
  worker_service_.reset();
  scheduler_.reset();
  coordinator_.reset();
  reader_.reset();
  artifacts_.reset();
  workers_.reset();
  tokens_.reset();
  users_.reset();
  runs_.reset();
  db_.reset();
  PENDULUM_LOG(INFO) << "server stopped";
}

Server::~Server() { Shutdown(); }

}  // namespace pendulum::api
