#include "server/api/run_service_impl.h"

#include <deque>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/api/artifact_send_reactor.h"
#include "server/api/call_auth.h"
#include "server/api/run_submission.h"
#include "server/api/status_util.h"

namespace pendulum::api {
namespace {

using pendulum::v1::RunUpdate;

constexpr char kService[] = "/pendulum.v1.RunService/";

// Finishes a unary call with the status of `body`.
template <typename Body>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, Body&& body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(body()));
  return reactor;
}

// Streams a run's updates to one client: the current Run first (plus stored
// history if asked), then whatever the Coordinator delivers, until the run is
// terminal. One write in flight; updates queue behind it.
class WatchReactor final : public grpc::ServerWriteReactor<RunUpdate>, public RunWatcher {
 public:
  WatchReactor(Coordinator* coordinator, store::MetricReader* reader,
               absl::StatusOr<auth::Principal> who, const pendulum::v1::WatchRunRequest& request)
      : coordinator_(coordinator),
        run_id_(request.run_id()),
        names_(request.names().begin(), request.names().end()) {
    if (!who.ok()) {
      FinishOnce(who.status());
      return;
    }
    absl::StatusOr<pendulum::v1::Run> run = coordinator_->Subscribe(*who, run_id_, this);
    if (!run.ok()) {
      FinishOnce(run.status());
      return;
    }
    subscribed_ = true;
    RunUpdate first;
    *first.mutable_run() = *run;
    if (request.include_history()) {
      pendulum::v1::QueryMetricsRequest query;
      query.set_run_id(run_id_);
      *query.mutable_names() = request.names();
      absl::StatusOr<pendulum::v1::QueryMetricsResponse> history = reader->QueryMetrics(query);
      if (history.ok()) *first.mutable_points() = history->series();
    }
    absl::MutexLock lock(&mu_);
    // Updates delivered while we subscribed are already queued; the snapshot goes first.
    queue_.push_front(std::move(first));
    if (store::IsTerminal(run->state())) final_queued_ = true;
    started_ = true;
    MaybeWriteLocked();
  }

  void Deliver(const RunUpdate& update, bool final) override {
    absl::MutexLock lock(&mu_);
    if (finished_ || final_queued_) return;
    RunUpdate filtered;
    if (update.has_run()) *filtered.mutable_run() = update.run();
    for (const auto& series : update.points()) {
      if (names_.empty() || names_.count(series.name()) > 0) *filtered.add_points() = series;
    }
    if (!filtered.has_run() && filtered.points().empty()) return;
    queue_.push_back(std::move(filtered));
    if (final) final_queued_ = true;
    MaybeWriteLocked();
  }

  void Close(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    if (writing_) {
      close_status_ = status;
      close_pending_ = true;
      return;
    }
    FinishLocked(status);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!queue_.empty()) queue_.pop_front();
    if (!ok) {
      FinishLocked(absl::CancelledError("client went away"));
      return;
    }
    if (close_pending_) {
      FinishLocked(close_status_);
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    if (!writing_) FinishLocked(absl::CancelledError("watch cancelled"));
    else close_pending_ = true, close_status_ = absl::CancelledError("watch cancelled");
  }

  void OnDone() override {
    // After Unsubscribe returns no Deliver() is running or will run.
    if (subscribed_) coordinator_->Unsubscribe(run_id_, this);
    delete this;
  }

 private:
  void FinishOnce(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    FinishLocked(status);
  }
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(ToGrpcStatus(status));
  }
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!started_ || writing_ || finished_) return;
    if (queue_.empty()) {
      if (final_queued_) FinishLocked(absl::OkStatus());  // the terminal update is out
      return;
    }
    writing_ = true;
    StartWrite(&queue_.front());
  }

  Coordinator* const coordinator_;
  const int64_t run_id_;
  const std::set<std::string> names_;
  bool subscribed_ = false;

  absl::Mutex mu_;
  std::deque<RunUpdate> queue_ ABSL_GUARDED_BY(mu_);  // front is in flight while writing_
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool final_queued_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool close_pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerUnaryReactor* RunServiceImpl::SubmitRun(grpc::CallbackServerContext* context,
                                                    const pendulum::v1::SubmitRunRequest* request,
                                                    pendulum::v1::SubmitRunResponse* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ASSIGN_OR_RETURN(auth::Principal who,
                              AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "SubmitRun")));
    PENDULUM_ASSIGN_OR_RETURN(std::vector<pendulum::v1::RunSpec> specs, ExpandSubmission(*request));
    PENDULUM_ASSIGN_OR_RETURN(*response,
                              coordinator_->Submit(who, specs, request->sweep_size() > 0));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RunServiceImpl::GetRun(grpc::CallbackServerContext* context,
                                                 const pendulum::v1::GetRunRequest* request,
                                                 pendulum::v1::Run* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ASSIGN_OR_RETURN(auth::Principal who,
                              AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "GetRun")));
    PENDULUM_ASSIGN_OR_RETURN(*response, coordinator_->GetRun(who, request->run_id()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RunServiceImpl::ListRuns(grpc::CallbackServerContext* context,
                                                   const pendulum::v1::ListRunsRequest* request,
                                                   pendulum::v1::ListRunsResponse* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ASSIGN_OR_RETURN(auth::Principal who,
                              AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "ListRuns")));
    if (request->page_size() > 1000) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_size: got ", request->page_size(), ", must be 1..1000 (0 = 100)"));
    }
    store::RunFilter filter;
    for (int s : request->states()) filter.states.push_back(static_cast<pendulum::v1::RunState>(s));
    if (who.is_admin()) {
      filter.owner = request->owner();
    } else {
      if (!request->owner().empty() && request->owner() != who.user) {
        return absl::PermissionDeniedError(
            absl::StrCat("owner: only admins may list other users' runs (you are '", who.user, "')"));
      }
      filter.owner = who.user;
    }
    filter.name_contains = request->name_contains();
    filter.sweep_id = request->sweep_id();
    filter.page_size = request->page_size() == 0 ? 100 : static_cast<int>(request->page_size());
    filter.page_token = request->page_token();
    PENDULUM_ASSIGN_OR_RETURN(store::RunPage page, runs_->ListRuns(filter));
    for (auto& run : page.runs) *response->add_runs() = std::move(run);
    response->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RunServiceImpl::CancelRun(grpc::CallbackServerContext* context,
                                                    const pendulum::v1::CancelRunRequest* request,
                                                    pendulum::v1::Run* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ASSIGN_OR_RETURN(auth::Principal who,
                              AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "CancelRun")));
    PENDULUM_ASSIGN_OR_RETURN(*response,
                              coordinator_->CancelRun(who, request->run_id(), request->reason()));
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<RunUpdate>* RunServiceImpl::WatchRun(
    grpc::CallbackServerContext* context, const pendulum::v1::WatchRunRequest* request) {
  return new WatchReactor(coordinator_, reader_,
                          AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "WatchRun")),
                          *request);
}

grpc::ServerWriteReactor<pendulum::v1::ArtifactData>* RunServiceImpl::FetchArtifact(
    grpc::CallbackServerContext* context, const pendulum::v1::FetchArtifactRequest* request) {
  absl::StatusOr<auth::Principal> who =
      AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "FetchArtifact"));
  absl::StatusOr<store::Artifact> artifact =
      who.ok() ? coordinator_->FindArtifact(*who, request->run_id(), request->name(), request->id())
               : absl::StatusOr<store::Artifact>(who.status());
  pendulum::v1::ArtifactData first;
  if (artifact.ok()) {
    pendulum::v1::RunArtifact* info = first.mutable_info();
    info->set_id(artifact->id);
    info->set_attempt(artifact->attempt);
    info->set_step(artifact->step);
    info->set_kind(artifact->kind);
    info->set_name(artifact->name);
    info->set_size(artifact->size);
    info->set_sha256(artifact->sha256);
    info->set_created_unix_ms(artifact->created_unix_ms);
  }
  return new ArtifactSendReactor<pendulum::v1::ArtifactData>(artifact, std::move(first));
}

grpc::ServerUnaryReactor* RunServiceImpl::QueryMetrics(grpc::CallbackServerContext* context,
                                                       const pendulum::v1::QueryMetricsRequest* request,
                                                       pendulum::v1::QueryMetricsResponse* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ASSIGN_OR_RETURN(auth::Principal who,
                              AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "QueryMetrics")));
    PENDULUM_RETURN_IF_ERROR(coordinator_->GetRun(who, request->run_id()).status());
    PENDULUM_ASSIGN_OR_RETURN(*response, reader_->QueryMetrics(*request));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RunServiceImpl::QueryOscillation(
    grpc::CallbackServerContext* context, const pendulum::v1::QueryOscillationRequest* request,
    pendulum::v1::QueryOscillationResponse* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ASSIGN_OR_RETURN(
        auth::Principal who,
        AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "QueryOscillation")));
    PENDULUM_RETURN_IF_ERROR(coordinator_->GetRun(who, request->run_id()).status());
    PENDULUM_ASSIGN_OR_RETURN(*response, reader_->QueryOscillation(*request));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RunServiceImpl::RequestCheckpoint(
    grpc::CallbackServerContext* context, const pendulum::v1::RequestCheckpointRequest* request,
    pendulum::v1::RequestCheckpointResponse* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ASSIGN_OR_RETURN(
        auth::Principal who,
        AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "RequestCheckpoint")));
    return coordinator_->RequestCheckpoint(who, request->run_id());
  });
}

grpc::ServerUnaryReactor* RunServiceImpl::ListWorkers(grpc::CallbackServerContext* context,
                                                      const pendulum::v1::ListWorkersRequest* request,
                                                      pendulum::v1::ListWorkersResponse* response) {
  return Unary(context, [&]() -> absl::Status {
    PENDULUM_ASSIGN_OR_RETURN(auth::Principal who,
                              AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "ListWorkers")));
    (void)who;
    PENDULUM_ASSIGN_OR_RETURN(std::vector<pendulum::v1::WorkerInfo> workers, coordinator_->ListWorkers());
    for (auto& w : workers) *response->add_workers() = std::move(w);
    return absl::OkStatus();
  });
}

}  // namespace pendulum::api
