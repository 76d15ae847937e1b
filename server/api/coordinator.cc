#include "server/api/coordinator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace pendulum::api {
namespace {

using pendulum::v1::Run;
using pendulum::v1::RunState;

absl::Status RunNotFound(int64_t run_id) {
  return absl::NotFoundError(absl::StrCat("run ", run_id, " not found"));
}

scheduler::QueuedRun ToQueued(const Run& run) {
  scheduler::QueuedRun q;
  q.run_id = run.id();
  q.owner = run.owner();
  q.priority = run.priority();
  q.submit_unix_ms = run.created_unix_ms();
  const auto& res = run.spec().resources();
  // gpu_fraction in (0, 1) asks for a share of one GPU (the validator allows
  // it only with gpus <= 1); otherwise `gpus` whole GPUs.
  if (res.gpu_fraction() > 0 && res.gpu_fraction() < 1) {
    q.request.gpu_fraction = res.gpu_fraction();
  } else {
    q.request.gpus = res.gpus() > 0 ? res.gpus() : (res.gpu_fraction() >= 1 ? 1 : 0);
  }
  q.request.gpu_memory_mb = res.gpu_memory_mb();
  q.request.node_labels.insert(res.node_labels().begin(), res.node_labels().end());
  return q;
}

// Fractional runs share GPUs; the per-GPU share vector is sized lazily so
// that every place a worker's GPU count changes need not know about it.
void EnsureShared(std::vector<double>& shared, size_t gpus) {
  if (shared.size() != gpus) shared.resize(gpus, 0.0);
}

}  // namespace

Coordinator::Coordinator(Deps deps, CoordinatorOptions options)
    : deps_(deps), options_(options), usage_(options.fair_share_half_life) {}

void Coordinator::Notify() {
  if (scheduler_ != nullptr) scheduler_->Notify();
}

// ---------------------------------------------------------------------------
// Start-up

absl::Status Coordinator::Load() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = deps_.clock->Now();
  absl::StatusOr<std::vector<pendulum::v1::WorkerInfo>> workers = deps_.workers->ListWorkers();
  if (!workers.ok()) return workers.status();
  for (const auto& info : *workers) {
    LiveWorker& w = workers_[info.id()];
    w.info = info;
    w.draining = info.state() == pendulum::v1::WORKER_DRAINING;
    w.lost = info.state() == pendulum::v1::WORKER_LOST;
    // Every known worker gets one full lease from now to reconnect before
    // its runs are declared lost: nothing is killed because the server blinked.
    w.last_seen = now;
    w.gpu_owner.assign(info.gpus_size(), 0);
  }
  absl::StatusOr<std::vector<Run>> queued = deps_.runs->ListRunsInStates({pendulum::v1::QUEUED});
  if (!queued.ok()) return queued.status();
  for (const Run& run : *queued) EnqueueLocked(run);

  absl::StatusOr<std::vector<Run>> active = deps_.runs->ListRunsInStates(
      {pendulum::v1::STARTING, pendulum::v1::RUNNING, pendulum::v1::CANCELLING});
  if (!active.ok()) return active.status();
  for (const Run& run : *active) {
    ActiveRun a;
    a.run_id = run.id();
    a.attempt = run.attempt();
    a.owner = run.owner();
    a.worker_id = run.worker_id();
    a.state = run.state();
    a.priority = run.priority();
    a.request = ToQueued(run).request;
    auto it = workers_.find(run.worker_id());
    if (it == workers_.end()) {
      active_[run.id()] = a;
      RequeueLocked(run.id(), absl::StrCat("worker '", run.worker_id(), "' unknown after restart"));
      continue;
    }
    // GPU indices are not persisted; reserve the same number of GPUs (lowest
    // free indices) so the pool's free capacity is right after a restart.
    Allocate(it->second, a, a.request);
    active_[run.id()] = std::move(a);
  }
  PENDULUM_LOG(INFO) << "coordinator loaded " << queue_.size() << " queued, " << active_.size()
                     << " active runs, " << workers_.size() << " workers";
  return absl::OkStatus();
}

void Coordinator::EnqueueLocked(const Run& run) {
  queue_[run.id()] = ToQueued(run);
  absl::MutexLock lock(&fanout_mu_);
  run_owner_[run.id()] = run.owner();
}

// ---------------------------------------------------------------------------
// RunService

absl::StatusOr<pendulum::v1::SubmitRunResponse> Coordinator::Submit(
    const auth::Principal& who, const std::vector<pendulum::v1::RunSpec>& specs, bool as_sweep) {
  // Insert first (one transaction, all or none), then queue: a run is
  // accepted only once it is durable.
  absl::StatusOr<store::SweepResult> created = deps_.runs->CreateRuns(specs, who.user, as_sweep);
  if (!created.ok()) return created.status();
  pendulum::v1::SubmitRunResponse response;
  response.set_sweep_id(created->sweep_id);
  {
    absl::MutexLock lock(&mu_);
    for (const Run& run : created->runs) {
      EnqueueLocked(run);
      response.add_run_ids(run.id());
    }
  }
  Notify();
  return response;
}

absl::StatusOr<Run> Coordinator::GetVisibleRun(const auth::Principal& who, int64_t run_id) {
  if (run_id <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("run_id: got ", run_id, ", must be >= 1"));
  }
  absl::StatusOr<Run> run = deps_.runs->GetRun(run_id);
  if (absl::IsNotFound(run.status())) return RunNotFound(run_id);
  if (!run.ok()) return run.status();
  // Someone else's run is reported exactly like a missing one, so run ids do
  // not reveal other users' work.
  if (!who.CanAccessRunOf(run->owner())) return RunNotFound(run_id);
  return run;
}

absl::StatusOr<Run> Coordinator::GetRun(const auth::Principal& who, int64_t run_id) {
  absl::StatusOr<Run> run = GetVisibleRun(who, run_id);
  if (!run.ok() || deps_.artifacts == nullptr) return run;
  absl::StatusOr<std::vector<store::Artifact>> artifacts = deps_.artifacts->ListForRun(run_id);
  if (!artifacts.ok()) return artifacts.status();
  for (const store::Artifact& a : *artifacts) {
    pendulum::v1::RunArtifact* out = run->add_artifacts();
    out->set_id(a.id);
    out->set_attempt(a.attempt);
    out->set_step(a.step);
    out->set_kind(a.kind);
    out->set_name(a.name);
    out->set_size(a.size);
    out->set_sha256(a.sha256);
    out->set_created_unix_ms(a.created_unix_ms);
  }
  return run;
}

absl::StatusOr<store::Artifact> Coordinator::FindArtifact(const auth::Principal& who, int64_t run_id,
                                                          const std::string& name, const std::string& id) {
  PENDULUM_RETURN_IF_ERROR(GetVisibleRun(who, run_id).status());
  if (deps_.artifacts == nullptr) return absl::UnavailableError("this server stores no artifacts");
  if (!name.empty()) return deps_.artifacts->GetByName(run_id, name);
  if (id.empty()) return absl::InvalidArgumentError("name: give an artifact name or id");
  absl::StatusOr<store::Artifact> a = deps_.artifacts->Get(id);
  if (a.ok() && a->run_id != run_id) {
    return absl::NotFoundError(absl::StrCat("artifact '", id, "' is not an artifact of run ", run_id));
  }
  return a;
}

absl::StatusOr<Run> Coordinator::CancelRun(const auth::Principal& who, int64_t run_id,
                                           const std::string& reason) {
  absl::StatusOr<Run> visible = GetVisibleRun(who, run_id);
  if (!visible.ok()) return visible.status();
  std::string why = absl::StrCat("cancelled by ", who.user);
  if (!reason.empty()) absl::StrAppend(&why, ": ", reason);

  absl::MutexLock lock(&mu_);
  if (queue_.count(run_id) > 0) {
    store::RunTransition t;
    t.to = pendulum::v1::CANCELLED;
    t.allowed_from = {pendulum::v1::QUEUED};
    t.reason = why;
    absl::StatusOr<Run> run = deps_.runs->UpdateRunState(run_id, t);
    if (!run.ok()) return run.status();
    queue_.erase(run_id);
    queue_reasons_.erase(run_id);
    Publish(*run);
    Notify();
    return run;
  }
  auto it = active_.find(run_id);
  if (it != active_.end()) {
    ActiveRun& a = it->second;
    if (a.state == pendulum::v1::CANCELLING) return deps_.runs->GetRun(run_id);
    store::RunTransition t;
    t.to = pendulum::v1::CANCELLING;
    t.allowed_from = {pendulum::v1::STARTING, pendulum::v1::RUNNING};
    t.expected_attempt = a.attempt;
    t.reason = why;
    absl::StatusOr<Run> run = deps_.runs->UpdateRunState(run_id, t);
    if (!run.ok()) return run.status();
    a.state = pendulum::v1::CANCELLING;
    pendulum::v1::ServerMessage message;
    auto* cancel = message.mutable_cancel();
    cancel->set_run_id(run_id);
    cancel->set_attempt(a.attempt);
    cancel->set_grace_seconds(options_.cancel_grace_seconds);
    cancel->set_reason(why);
    // If the worker is disconnected, the Cancel is resent when it says Hello.
    SendTo(a.worker_id, message);
    Publish(*run);
    return run;
  }
  absl::StatusOr<Run> run = deps_.runs->GetRun(run_id);
  if (!run.ok()) return run.status();
  return absl::FailedPreconditionError(absl::StrCat(
      "run ", run_id, " is already ", store::RunStateName(run->state()), "; nothing to cancel"));
}

absl::Status Coordinator::RequestCheckpoint(const auth::Principal& who, int64_t run_id) {
  absl::StatusOr<Run> visible = GetVisibleRun(who, run_id);
  if (!visible.ok()) return visible.status();
  absl::MutexLock lock(&mu_);
  auto it = active_.find(run_id);
  if (it == active_.end() || it->second.state != pendulum::v1::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run_id, " is ", store::RunStateName(visible->state()),
                     "; only a RUNNING run can be asked to checkpoint"));
  }
  pendulum::v1::ServerMessage message;
  message.mutable_checkpoint_now()->set_run_id(run_id);
  message.mutable_checkpoint_now()->set_attempt(it->second.attempt);
  SendTo(it->second.worker_id, message);
  return absl::OkStatus();
}

absl::StatusOr<Run> Coordinator::Subscribe(const auth::Principal& who, int64_t run_id,
                                           RunWatcher* watcher) {
  // Holding mu_ orders the first snapshot before any later state change
  // (state changes publish under mu_).
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Run> run = GetVisibleRun(who, run_id);
  if (!run.ok()) return run.status();
  absl::MutexLock fanout(&fanout_mu_);
  watchers_.emplace(run_id, watcher);
  run_owner_[run_id] = run->owner();
  return run;
}

void Coordinator::Unsubscribe(int64_t run_id, RunWatcher* watcher) {
  absl::MutexLock fanout(&fanout_mu_);
  auto range = watchers_.equal_range(run_id);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == watcher) {
      watchers_.erase(it);
      return;
    }
  }
}

void Coordinator::Publish(const Run& run) {
  pendulum::v1::RunUpdate update;
  *update.mutable_run() = run;
  const bool final = store::IsTerminal(run.state());
  absl::MutexLock fanout(&fanout_mu_);
  auto range = watchers_.equal_range(run.id());
  for (auto it = range.first; it != range.second; ++it) it->second->Deliver(update, final);
}

void Coordinator::SendTo(const std::string& worker_id, const pendulum::v1::ServerMessage& message) {
  absl::MutexLock fanout(&fanout_mu_);
  auto it = channels_.find(worker_id);
  if (it != channels_.end()) it->second->Send(message);
}

// ---------------------------------------------------------------------------
// AdminService

absl::StatusOr<pendulum::v1::WorkerInfo> Coordinator::SetDraining(const std::string& worker_id,
                                                                  bool draining) {
  if (worker_id.empty()) return absl::InvalidArgumentError("worker_id: empty");
  absl::StatusOr<pendulum::v1::WorkerInfo> info = deps_.workers->SetDraining(worker_id, draining);
  if (absl::IsNotFound(info.status())) {
    return absl::NotFoundError(absl::StrCat("worker '", worker_id, "' not found"));
  }
  if (!info.ok()) return info.status();
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(worker_id);
    if (it != workers_.end()) it->second.draining = draining;
  }
  Notify();
  return info;
}

absl::StatusOr<std::vector<pendulum::v1::WorkerInfo>> Coordinator::ListWorkers() {
  absl::StatusOr<std::vector<pendulum::v1::WorkerInfo>> workers = deps_.workers->ListWorkers();
  if (!workers.ok()) return workers;
  // The store knows the workers; only the live state knows which are held back.
  absl::MutexLock lock(&mu_);
  const absl::Time now = deps_.clock->Now();
  for (pendulum::v1::WorkerInfo& info : *workers) {
    auto it = workers_.find(info.id());
    if (it == workers_.end() || now >= it->second.held_until) continue;
    const absl::Duration left = absl::Ceil(it->second.held_until - now, absl::Seconds(1));
    info.set_note(absl::StrCat("held back ", absl::FormatDuration(left), " more: ", it->second.held_reason));
  }
  return workers;
}

pendulum::v1::PoolStatus Coordinator::PoolStatus() {
  pendulum::v1::PoolStatus status;
  absl::StatusOr<std::vector<std::pair<RunState, int64_t>>> counts = deps_.runs->CountRunsByState();
  if (counts.ok()) {
    for (const auto& [state, n] : *counts) {
      (*status.mutable_runs_by_state())[store::RunStateName(state)] = static_cast<uint32_t>(n);
    }
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [id, w] : workers_) {
    if (w.channel == nullptr || w.lost) continue;
    status.set_workers_online(status.workers_online() + 1);
    status.set_gpus_total(status.gpus_total() + w.gpu_owner.size());
    // A GPU shared by fractional runs is busy too.
    int64_t busy = 0;
    for (size_t i = 0; i < w.gpu_owner.size(); ++i) {
      if (w.gpu_owner[i] != 0 || (i < w.gpu_shared.size() && w.gpu_shared[i] > 0)) ++busy;
    }
    status.set_gpus_busy(status.gpus_busy() + busy);
    status.set_slots_total(status.slots_total() + w.info.slots());
    status.set_slots_busy(status.slots_busy() + w.slots_used);
  }
  for (const auto& [id, q] : queue_) (*status.mutable_queued_by_user())[q.owner] += 1;
  return status;
}

void Coordinator::CloseAllStreams() {
  absl::MutexLock fanout(&fanout_mu_);
  for (auto& [id, channel] : channels_) channel->Close(absl::UnavailableError("server shutting down"));
  for (auto& [id, watcher] : watchers_) watcher->Close(absl::UnavailableError("server shutting down"));
}

void Coordinator::RefreshGauges() {
  if (deps_.metrics == nullptr) return;
  pendulum::v1::PoolStatus pool = PoolStatus();
  std::map<std::string, int64_t> runs(pool.runs_by_state().begin(), pool.runs_by_state().end());
  deps_.metrics->SetRunsByState(runs);
  std::map<std::string, int64_t> queue(pool.queued_by_user().begin(), pool.queued_by_user().end());
  deps_.metrics->SetQueueDepthByUser(queue);
  deps_.metrics->SetGpus(pool.gpus_busy(), pool.gpus_total() - pool.gpus_busy());
  deps_.metrics->SetIngestQueueEvents(deps_.ingestor->QueuedEvents());
  std::map<std::string, int64_t> workers;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, w] : workers_) {
      std::string state = w.lost ? "LOST"
                          : w.channel == nullptr ? "DISCONNECTED"
                          : w.draining ? "DRAINING"
                                       : "ONLINE";
      workers[state] += 1;
    }
  }
  deps_.metrics->SetWorkersByState(workers);
  std::map<std::string, int64_t> running_by_user;
  std::map<std::string, int64_t> gpus_by_user;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, a] : active_) {
      running_by_user[a.owner] += 1;
      gpus_by_user[a.owner] += a.uses_slot ? 1 : static_cast<int64_t>(a.gpu_indices.size());
    }
  }
  deps_.metrics->SetUsageByUser(running_by_user, gpus_by_user);
}

void Coordinator::PublishRunGauges(const pendulum::v1::RunEvents& events, const std::string& owner) {
  // Called under mu_ for a batch of an active attempt, so a batch that arrives
  // after the run ended (FinishLocked/RequeueLocked remove the series, also
  // under mu_) cannot bring a dead run's gauges back. Only the newest values
  // matter for a live gauge; SQLite keeps the full history. Oscillation keys
  // look like "osc_ratio_0.005" (threshold suffix).
  static constexpr absl::string_view kPrefix = "osc_ratio_";
  std::map<std::string, double> latest;
  for (const auto& e : events.events()) {
    if (e.has_scalars()) {
      for (const auto& [name, value] : e.scalars().values()) latest[name] = value;
    }
    if (!e.has_oscillation()) continue;
    for (const auto& layer : e.oscillation().layers()) {
      for (const auto& [key, value] : layer.values()) {
        if (!absl::StartsWith(key, kPrefix)) continue;
        deps_.metrics->SetRunOscillation(events.run_id(), owner, layer.layer(), key.substr(kPrefix.size()),
                                         value);
      }
    }
  }
  if (!latest.empty()) deps_.metrics->SetRunScalars(events.run_id(), owner, latest);
}

// ---------------------------------------------------------------------------
// WorkerService

absl::StatusOr<pendulum::v1::RegisterResponse> Coordinator::Register(
    const pendulum::v1::RegisterRequest& request) {
  pendulum::v1::WorkerInfo info;
  info.set_id(request.worker_id().empty() ? request.hostname() : request.worker_id());
  if (info.id().empty()) {
    return absl::InvalidArgumentError("worker_id: empty (and no hostname to default to)");
  }
  if (request.gpus().empty() && request.slots() == 0) {
    return absl::InvalidArgumentError(
        "slots: 0 and no gpus; a worker must offer at least one GPU or CPU slot");
  }
  info.set_hostname(request.hostname());
  *info.mutable_gpus() = request.gpus();
  info.set_slots(request.slots());
  *info.mutable_labels() = request.labels();
  info.set_version(request.version());
  absl::StatusOr<pendulum::v1::WorkerInfo> stored = deps_.workers->UpsertWorker(info);
  if (!stored.ok()) return stored.status();
  {
    absl::MutexLock lock(&mu_);
    LiveWorker& w = workers_[info.id()];
    w.info = *stored;
    w.draining = stored->state() == pendulum::v1::WORKER_DRAINING;
    w.last_seen = deps_.clock->Now();
    if (w.gpu_owner.size() != static_cast<size_t>(stored->gpus_size())) {
      std::vector<int64_t> owners(stored->gpus_size(), 0);
      for (size_t i = 0; i < std::min(owners.size(), w.gpu_owner.size()); ++i) owners[i] = w.gpu_owner[i];
      w.gpu_owner = std::move(owners);
    }
  }
  pendulum::v1::RegisterResponse response;
  response.set_worker_id(info.id());
  response.set_lease_seconds(static_cast<uint32_t>(absl::ToInt64Seconds(options_.lease)));
  response.set_heartbeat_seconds(static_cast<uint32_t>(absl::ToInt64Seconds(options_.heartbeat)));
  return response;
}

absl::Status Coordinator::OnHello(const pendulum::v1::Hello& hello, WorkerChannel* channel) {
  const std::string& id = hello.worker_id();
  absl::MutexLock lock(&mu_);
  auto wit = workers_.find(id);
  if (id.empty() || wit == workers_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("hello.worker_id: worker '", id, "' is not registered; call Register first"));
  }
  LiveWorker& w = wit->second;
  {
    absl::MutexLock fanout(&fanout_mu_);
    WorkerChannel*& slot = channels_[id];
    if (slot != nullptr && slot != channel) {
      slot->Close(absl::AbortedError("replaced by a newer Connect stream of the same worker"));
    }
    slot = channel;
  }
  w.channel = channel;
  w.lost = false;
  w.last_seen = deps_.clock->Now();
  deps_.workers->SetWorkerState(id, pendulum::v1::WORKER_ONLINE)
      .IgnoreError();  // display only; the lease logic uses memory

  std::set<std::pair<int64_t, uint32_t>> held;
  for (const auto& r : hello.runs()) held.emplace(r.run_id(), r.attempt());

  // Runs the server placed here: kept if the worker still has them (a server
  // or connection restart kills nothing); requeued if it does not.
  std::vector<int64_t> mine(w.runs.begin(), w.runs.end());
  for (int64_t run_id : mine) {
    ActiveRun& a = active_.at(run_id);
    if (held.count({run_id, a.attempt}) > 0) {
      if (a.state == pendulum::v1::CANCELLING) {
        pendulum::v1::ServerMessage message;
        message.mutable_cancel()->set_run_id(run_id);
        message.mutable_cancel()->set_attempt(a.attempt);
        message.mutable_cancel()->set_grace_seconds(options_.cancel_grace_seconds);
        message.mutable_cancel()->set_reason("cancelled");
        channel->Send(message);
      } else if (a.preempted_for != 0) {  // the preemption's Cancel may have been lost with the stream
        pendulum::v1::ServerMessage message;
        message.mutable_cancel()->set_run_id(run_id);
        message.mutable_cancel()->set_attempt(a.attempt);
        message.mutable_cancel()->set_grace_seconds(options_.preempt_grace_seconds);
        message.mutable_cancel()->set_reason(a.preempt_reason);
        channel->Send(message);
      }
      continue;
    }
    RequeueLocked(run_id, absl::StrCat("worker '", id, "' reconnected without attempt ", a.attempt));
  }
  // Attempts the worker has that are no longer current here (requeued after a
  // lease expiry, cancelled meanwhile): tell the worker to stop them. Their
  // events are still stored and acked.
  for (const auto& [run_id, attempt] : held) {
    auto it = active_.find(run_id);
    if (it != active_.end() && it->second.attempt == attempt && it->second.worker_id == id) continue;
    absl::StatusOr<Run> run = deps_.runs->GetRun(run_id);
    if (run.ok() && run->attempt() == attempt && store::IsTerminal(run->state())) continue;
    pendulum::v1::ServerMessage message;
    message.mutable_cancel()->set_run_id(run_id);
    message.mutable_cancel()->set_attempt(attempt);
    message.mutable_cancel()->set_grace_seconds(options_.cancel_grace_seconds);
    message.mutable_cancel()->set_reason("attempt is no longer current on the server");
    channel->Send(message);
  }
  PENDULUM_LOG(INFO) << "worker " << id << " connected with " << hello.runs_size() << " runs";
  Notify();
  return absl::OkStatus();
}

void Coordinator::OnHeartbeat(const std::string& worker_id, const pendulum::v1::Heartbeat& heartbeat) {
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(worker_id);
    if (it == workers_.end()) return;
    it->second.last_seen = deps_.clock->Now();
  }
  if (deps_.metrics != nullptr) {
    deps_.metrics->SetWorkerSpool(worker_id, heartbeat.spool_events(), heartbeat.spool_bytes());
  }
  std::vector<pendulum::v1::GpuInfo> gpus(heartbeat.gpus().begin(), heartbeat.gpus().end());
  absl::Status s = deps_.workers->Heartbeat(worker_id, gpus);
  if (!s.ok()) {
    PENDULUM_LOG(WARNING) << "heartbeat of " << worker_id << ": " << s;
  }
}

void Coordinator::OnRunEvents(const std::string& worker_id, pendulum::v1::RunEvents events) {
  std::vector<pendulum::v1::TrainerEvent> scalars;
  bool started = false;
  for (const auto& e : events.events()) {
    if (e.has_scalars()) scalars.push_back(e);
    if (e.has_started()) started = true;
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(events.run_id());
    if (it != active_.end() && it->second.attempt == events.attempt() &&
        it->second.worker_id == worker_id) {
      auto wit = workers_.find(worker_id);
      if (wit != workers_.end()) wit->second.last_seen = deps_.clock->Now();
      if (deps_.metrics != nullptr) PublishRunGauges(events, it->second.owner);
      if (started && it->second.state == pendulum::v1::STARTING) {
        store::RunTransition t;
        t.to = pendulum::v1::RUNNING;
        t.allowed_from = {pendulum::v1::STARTING};
        t.expected_attempt = events.attempt();
        t.reason = "trainer started";
        absl::StatusOr<Run> run = deps_.runs->UpdateRunState(events.run_id(), t);
        if (run.ok()) {
          it->second.state = pendulum::v1::RUNNING;
          Publish(*run);
        }
      }
    }
  }
  // No lock held: Submit may block for backpressure. The ack is sent from the
  // writer thread after the commit (the no-loss rule: ack only after commit).
  deps_.ingestor->Submit(std::move(events),
                         [this, worker_id, scalars = std::move(scalars)](
                             absl::StatusOr<store::IngestAck> ack) mutable {
                           OnIngested(worker_id, ack, std::move(scalars));
                         });
}

void Coordinator::OnIngested(const std::string& worker_id, const absl::StatusOr<store::IngestAck>& ack,
                             std::vector<pendulum::v1::TrainerEvent> scalars) {
  if (!ack.ok()) {
    // Nothing is acked; the worker keeps the events spooled and resends them.
    PENDULUM_LOG(WARNING) << "ingesting events from worker " << worker_id << ": " << ack.status();
    return;
  }
  if (deps_.metrics != nullptr) deps_.metrics->AddIngestedPoints(ack->points_inserted);
  absl::MutexLock fanout(&fanout_mu_);
  auto channel = channels_.find(worker_id);
  if (channel != channels_.end() && ack->acked_seq > 0) {
    pendulum::v1::ServerMessage message;
    message.mutable_ack()->set_run_id(ack->run_id);
    message.mutable_ack()->set_attempt(ack->attempt);
    message.mutable_ack()->set_acked_seq(ack->acked_seq);
    channel->second->Send(message);
  }
  // Points newly durable since the last ack go to watchers, each exactly once.
  uint64_t& previous = acked_[{ack->run_id, ack->attempt}];
  const uint64_t from = previous;
  previous = std::max(previous, ack->acked_seq);
  std::map<std::string, pendulum::v1::MetricSeries> series;
  for (const auto& e : scalars) {
    if (e.seq() <= from || e.seq() > ack->acked_seq) continue;
    for (const auto& [name, value] : e.scalars().values()) {
      pendulum::v1::MetricSeries& s = series[name];
      s.set_name(name);
      auto* p = s.add_points();
      p->set_step(e.scalars().step());
      p->set_value(value);
      p->set_time_unix_ms(e.time_unix_ms());
      p->set_attempt(ack->attempt);
    }
  }
  if (series.empty()) return;
  pendulum::v1::RunUpdate update;
  for (auto& [name, s] : series) *update.add_points() = std::move(s);
  auto range = watchers_.equal_range(ack->run_id);
  for (auto it = range.first; it != range.second; ++it) it->second->Deliver(update, false);
}

void Coordinator::OnRunStatus(const std::string& worker_id, const pendulum::v1::RunStatus& status) {
  absl::MutexLock lock(&mu_);
  auto wit = workers_.find(worker_id);
  if (wit != workers_.end()) wit->second.last_seen = deps_.clock->Now();
  auto it = active_.find(status.run_id());
  if (it == active_.end() || it->second.attempt != status.attempt() ||
      it->second.worker_id != worker_id) {
    PENDULUM_LOG(INFO) << "ignoring status " << store::RunStateName(status.state()) << " of run "
                       << status.run_id() << " attempt " << status.attempt() << " from "
                       << worker_id << " (not its current attempt here)";
    return;
  }
  ActiveRun& a = it->second;
  // After a server restart `preempted_for` is gone, but the daemon's CANCELLED
  // status echoes the Cancel's reason, which names the preemption.
  const bool preempted =
      a.state != pendulum::v1::CANCELLING &&
      ((a.preempted_for != 0 &&
        (status.state() == pendulum::v1::CANCELLED || status.state() == pendulum::v1::FAILED)) ||
       (status.state() == pendulum::v1::CANCELLED &&
        absl::StrContains(status.message(), scheduler::kPreemptedReasonPrefix)));
  if (preempted) {
    // Stopped because we preempted it: back to the queue (attempt + 1), to
    // resume from the checkpoint it wrote on SIGTERM. Never a failure.
    const std::string why = a.preempted_for != 0 ? a.preempt_reason : status.message();
    RequeueLocked(status.run_id(), absl::StrCat(why, "; requeued to resume from its last checkpoint"));
    Notify();
    return;
  }
  if (status.state() == pendulum::v1::QUEUED) {
    // The worker could not start the trainer for a reason of its own (binary
    // missing or not executable, disk, server unreachable while fetching a
    // checkpoint): not the run's failure. Back to the queue, and the worker
    // is held back (doubling while it keeps failing) so that a broken worker
    // does not turn the whole queue into FAILED runs.
    if (wit != workers_.end()) {
      LiveWorker& w = wit->second;
      absl::Duration hold = options_.start_failure_holdback;
      for (int i = 0; i < w.start_failures && hold < options_.start_failure_holdback_max; ++i) hold *= 2;
      hold = std::min(hold, options_.start_failure_holdback_max);
      ++w.start_failures;
      w.held_until = deps_.clock->Now() + hold;
      w.held_reason = absl::StrCat("could not start a trainer (", status.message(), "); no placements for ",
                                   absl::FormatDuration(hold));
      PENDULUM_LOG(WARNING) << "worker " << worker_id << " could not start run " << status.run_id() << "."
                            << status.attempt() << " (" << status.message() << "); no placements on it for "
                            << absl::FormatDuration(hold);
    }
    RequeueLocked(status.run_id(), absl::StrCat("worker '", worker_id, "' could not start it: ", status.message()));
    Notify();
    return;
  }
  store::RunTransition t;
  t.expected_attempt = a.attempt;
  switch (status.state()) {
    case pendulum::v1::RUNNING:
      if (a.state != pendulum::v1::STARTING) return;
      if (wit != workers_.end()) wit->second.start_failures = 0;
      t.to = pendulum::v1::RUNNING;
      t.allowed_from = {pendulum::v1::STARTING};
      t.reason = "trainer running";
      break;
    case pendulum::v1::SUCCEEDED:
      t.to = pendulum::v1::SUCCEEDED;
      t.reason = status.message().empty() ? "succeeded" : status.message();
      t.exit_code = status.exit_code();
      break;
    case pendulum::v1::FAILED:
    case pendulum::v1::CANCELLED:
      // A trainer stopped because we asked is CANCELLED, whatever its exit code.
      if (a.state == pendulum::v1::CANCELLING || status.state() == pendulum::v1::CANCELLED) {
        t.to = pendulum::v1::CANCELLED;
        t.reason = status.message().empty() ? "cancelled" : status.message();
      } else {
        t.to = pendulum::v1::FAILED;
        t.reason = status.message().empty()
                       ? absl::StrCat("trainer exited with status ", status.exit_code())
                       : status.message();
      }
      t.exit_code = status.exit_code();
      break;
    default:
      return;
  }
  absl::StatusOr<Run> run = deps_.runs->UpdateRunState(status.run_id(), t);
  if (!run.ok()) {
    PENDULUM_LOG(WARNING) << "run " << status.run_id() << " → " << store::RunStateName(t.to) << ": "
                          << run.status();
    return;
  }
  if (t.to == pendulum::v1::RUNNING) {
    a.state = pendulum::v1::RUNNING;
    Publish(*run);
    return;
  }
  FinishLocked(status.run_id(), *run);
}

void Coordinator::FinishLocked(int64_t run_id, const Run& run) {
  auto it = active_.find(run_id);
  if (it != active_.end()) {
    Release(it->second);
    active_.erase(it);
  }
  if (deps_.metrics != nullptr) deps_.metrics->RemoveRun(run_id);
  Publish(run);
  Notify();
}

void Coordinator::OnDisconnect(const std::string& worker_id, WorkerChannel* channel) {
  absl::MutexLock lock(&mu_);
  {
    absl::MutexLock fanout(&fanout_mu_);
    auto it = channels_.find(worker_id);
    if (it == channels_.end() || it->second != channel) return;  // already replaced
    channels_.erase(it);
  }
  auto wit = workers_.find(worker_id);
  if (wit != workers_.end() && wit->second.channel == channel) wit->second.channel = nullptr;
  PENDULUM_LOG(INFO) << "worker " << worker_id << " disconnected; its runs wait one lease";
  Notify();
}

void Coordinator::CheckLeases() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = deps_.clock->Now();
  bool changed = false;
  for (auto& [id, w] : workers_) {
    if (w.held_until != absl::InfinitePast() && now >= w.held_until) {
      w.held_until = absl::InfinitePast();  // held back after a start failure: offer it work again
      changed = true;
    }
    if (w.lost || now - w.last_seen <= options_.lease) continue;
    w.lost = true;
    changed = true;
    if (deps_.metrics != nullptr) deps_.metrics->RemoveWorker(id);  // its spool gauge would go stale
    PENDULUM_LOG(WARNING) << "worker " << id << " lost: silent for "
                          << absl::FormatDuration(now - w.last_seen);
    deps_.workers->SetWorkerState(id, pendulum::v1::WORKER_LOST).IgnoreError();  // display only
    std::vector<int64_t> runs(w.runs.begin(), w.runs.end());
    for (int64_t run_id : runs) {
      RequeueLocked(run_id, absl::StrCat("worker '", id, "' lost (no heartbeat for ",
                                         absl::FormatDuration(options_.lease), ")"));
    }
    // A silent stream may still be open: end it so the worker, if alive,
    // reconnects and its Hello reconciles (stopping the requeued attempts).
    absl::MutexLock fanout(&fanout_mu_);
    auto cit = channels_.find(id);
    if (cit != channels_.end()) {
      cit->second->Close(absl::UnavailableError("lease expired; reconnect"));
      channels_.erase(cit);
    }
    w.channel = nullptr;
  }
  if (changed) Notify();
}

void Coordinator::RequeueLocked(int64_t run_id, const std::string& reason) {
  auto it = active_.find(run_id);
  if (it == active_.end()) return;
  ActiveRun a = it->second;
  if (a.state == pendulum::v1::CANCELLING) {
    store::RunTransition t;
    t.to = pendulum::v1::CANCELLED;
    t.expected_attempt = a.attempt;
    t.reason = absl::StrCat("cancelled; ", reason, " before confirming");
    absl::StatusOr<Run> run = deps_.runs->UpdateRunState(run_id, t);
    if (run.ok()) {
      FinishLocked(run_id, *run);
      return;
    }
    PENDULUM_LOG(WARNING) << "cancel of run " << run_id << ": " << run.status();
  }
  absl::StatusOr<Run> run = deps_.runs->RequeueRun(run_id, a.attempt, reason);
  if (!run.ok()) {
    PENDULUM_LOG(ERROR) << "requeue of run " << run_id << ": " << run.status();
    return;
  }
  Release(a);
  active_.erase(run_id);
  if (deps_.metrics != nullptr) deps_.metrics->RemoveRun(run_id);
  EnqueueLocked(*run);
  PENDULUM_LOG(INFO) << "run " << run_id << " requeued as attempt " << run->attempt() << ": " << reason;
  Publish(*run);
}

void Coordinator::Allocate(LiveWorker& worker, ActiveRun& run, const scheduler::ResourceRequest& request) {
  run.gpu_indices.clear();
  run.uses_slot = request.uses_slot();
  if (run.uses_slot) {
    ++worker.slots_used;
  } else if (request.gpus == 0) {
    // Fractional: the first GPU with room (shared first, then a free one).
    EnsureShared(worker.gpu_shared, worker.gpu_owner.size());
    int chosen = -1;
    for (size_t i = 0; i < worker.gpu_owner.size(); ++i) {
      if (worker.gpu_owner[i] != 0) continue;
      if (worker.gpu_shared[i] > 0 && worker.gpu_shared[i] + request.gpu_fraction <= 1.0 + 1e-9) {
        chosen = static_cast<int>(i);
        break;
      }
      if (chosen < 0 && worker.gpu_shared[i] == 0) chosen = static_cast<int>(i);
    }
    if (chosen >= 0) {
      worker.gpu_shared[chosen] += request.gpu_fraction;
      run.gpu_indices.push_back(static_cast<uint32_t>(chosen));
    }
  } else {
    EnsureShared(worker.gpu_shared, worker.gpu_owner.size());
    for (size_t i = 0; i < worker.gpu_owner.size() && run.gpu_indices.size() < request.gpus; ++i) {
      if (worker.gpu_owner[i] == 0 && worker.gpu_shared[i] == 0) {
        worker.gpu_owner[i] = run.run_id;
        run.gpu_indices.push_back(static_cast<uint32_t>(i));
      }
    }
  }
  worker.runs.insert(run.run_id);
}

void Coordinator::Release(const ActiveRun& run) {
  auto it = workers_.find(run.worker_id);
  if (it == workers_.end()) return;
  LiveWorker& w = it->second;
  if (run.uses_slot && w.slots_used > 0) --w.slots_used;
  for (auto& owner : w.gpu_owner) {
    if (owner == run.run_id) owner = 0;
  }
  if (!run.uses_slot && run.request.gpus == 0 && run.request.gpu_fraction > 0) {
    EnsureShared(w.gpu_shared, w.gpu_owner.size());
    for (uint32_t g : run.gpu_indices) {
      if (g >= w.gpu_shared.size()) continue;
      w.gpu_shared[g] -= run.request.gpu_fraction;
      if (w.gpu_shared[g] < 1e-9) w.gpu_shared[g] = 0;
    }
  }
  w.runs.erase(run.run_id);
}

// ---------------------------------------------------------------------------
// Scheduler backend

scheduler::PoolSnapshot Coordinator::TakeSnapshot() {
  // Quotas live in the user table: read them before taking mu_ (SQLite I/O).
  std::map<std::string, double> quotas;
  if (deps_.users != nullptr) {
    absl::StatusOr<std::vector<pendulum::v1::User>> users = deps_.users->ListUsers();
    if (users.ok()) {
      for (const auto& u : *users) {
        if (u.gpu_quota() > 0) quotas[u.name()] = u.gpu_quota();
      }
    } else {
      PENDULUM_LOG(WARNING) << "reading GPU quotas: " << users.status() << "; scheduling without quotas";
    }
  }
  absl::MutexLock lock(&mu_);
  scheduler::PoolSnapshot snapshot;
  snapshot.queue.reserve(queue_.size());
  for (const auto& [id, q] : queue_) snapshot.queue.push_back(q);

  // Fair share: account the GPU-time of every active run up to now. A CPU
  // slot counts as one GPU here, so CPU-only pools share fairly too.
  std::map<std::string, double> in_use;
  for (const auto& [id, a] : active_) in_use[a.owner] += a.uses_slot ? 1.0 : a.request.gpu_equivalent();
  usage_.Advance(deps_.clock->Now(), in_use);
  for (const auto& [user, seconds] : usage_.usage()) snapshot.users[user].recent_gpu_seconds = seconds;
  for (const auto& [user, quota] : quotas) snapshot.users[user].gpu_quota = quota;

  for (auto& [id, w] : workers_) {
    if (w.lost) continue;
    EnsureShared(w.gpu_shared, w.gpu_owner.size());
    scheduler::WorkerCapacity c;
    c.worker_id = id;
    if (deps_.clock->Now() < w.held_until) c.held_back = w.held_reason;
    c.schedulable = w.channel != nullptr && !w.draining && c.held_back.empty();
    c.draining = w.draining;
    c.total_gpus = w.gpu_owner.size();
    for (size_t i = 0; i < w.gpu_owner.size(); ++i) {
      if (w.gpu_owner[i] != 0) continue;
      if (w.gpu_shared[i] > 0) {
        c.shared_gpus[static_cast<uint32_t>(i)] = w.gpu_shared[i];
      } else {
        c.free_gpu_indices.push_back(static_cast<uint32_t>(i));
      }
    }
    // Smallest GPU of the worker: a memory constraint must hold on any of them.
    for (const auto& gpu : w.info.gpus()) {
      if (gpu.memory_mb() > 0 && (c.gpu_memory_mb == 0 || gpu.memory_mb() < c.gpu_memory_mb)) {
        c.gpu_memory_mb = gpu.memory_mb();
      }
    }
    c.total_slots = w.info.slots();
    c.free_slots = w.info.slots() > w.slots_used ? w.info.slots() - w.slots_used : 0;
    c.labels.insert(w.info.labels().begin(), w.info.labels().end());
    for (int64_t run_id : w.runs) {
      auto it = active_.find(run_id);
      if (it == active_.end()) continue;
      const ActiveRun& a = it->second;
      scheduler::RunningRun r;
      r.run_id = run_id;
      r.owner = a.owner;
      r.priority = a.priority;
      r.request = a.request;
      if (a.uses_slot) r.request = scheduler::ResourceRequest{};
      r.gpu_indices = a.gpu_indices;
      // Only a RUNNING trainer can checkpoint on SIGTERM; one still starting
      // would lose its work.
      r.preemptible = a.state == pendulum::v1::RUNNING && a.preempted_for == 0;
      r.stopping = a.preempted_for != 0;
      r.stopping_for = a.preempted_for;
      c.running.push_back(std::move(r));
    }
    snapshot.workers.push_back(std::move(c));
  }
  return snapshot;
}

void Coordinator::PreemptLocked(const scheduler::Preemption& p) {
  auto it = active_.find(p.run_id);
  if (it == active_.end()) return;  // finished meanwhile: nothing to stop
  ActiveRun& a = it->second;
  if (a.worker_id != p.worker_id || a.state != pendulum::v1::RUNNING || a.preempted_for != 0) return;
  if (queue_.count(p.for_run_id) == 0) return;  // the waiting run was placed or cancelled meanwhile
  a.preempted_for = p.for_run_id;
  a.preempt_reason = p.reason;
  // The trainer checkpoints on SIGTERM and the daemon uploads every
  // checkpoint before it reports the attempt's end; OnRunStatus then
  // requeues the run, and its next attempt resumes from that checkpoint (its
  // points past the checkpoint step are superseded, then re-emitted).
  pendulum::v1::ServerMessage message;
  auto* cancel = message.mutable_cancel();
  cancel->set_run_id(p.run_id);
  cancel->set_attempt(a.attempt);
  cancel->set_grace_seconds(options_.preempt_grace_seconds);
  cancel->set_reason(p.reason);
  PENDULUM_LOG(INFO) << "run " << p.run_id << " attempt " << a.attempt << ": " << p.reason;
  SendTo(a.worker_id, message);
}

void Coordinator::ApplyPlan(const scheduler::PlacementPlan& plan) {
  struct Supersede {
    int64_t run_id;
    uint32_t attempt;
    int64_t step;
  };
  std::vector<Supersede> supersede;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& p : plan.placements) {
      auto q = queue_.find(p.run_id);
      auto wit = workers_.find(p.worker_id);
      if (q == queue_.end() || wit == workers_.end()) continue;  // cancelled / gone meanwhile
      LiveWorker& w = wit->second;
      if (w.channel == nullptr || w.draining || w.lost || deps_.clock->Now() < w.held_until) continue;
      EnsureShared(w.gpu_shared, w.gpu_owner.size());
      const bool fractional = p.gpu_fraction > 0;
      bool free = p.gpu_indices.empty() ? w.slots_used < w.info.slots() : true;
      for (uint32_t g : p.gpu_indices) {
        free = free && g < w.gpu_owner.size() && w.gpu_owner[g] == 0 &&
               (fractional ? w.gpu_shared[g] + p.gpu_fraction <= 1.0 + 1e-9 : w.gpu_shared[g] == 0);
      }
      if (!free) continue;  // capacity changed since the snapshot; next pass retries

      std::string where =
          p.gpu_indices.empty()
              ? absl::StrCat("placed on ", p.worker_id, " (CPU slot)")
              : fractional ? absl::StrCat("placed on ", p.worker_id, " (", p.gpu_fraction, " of GPU ",
                                          p.gpu_indices.front(), ")")
                           : absl::StrCat("placed on ", p.worker_id, " (GPUs ",
                                          absl::StrJoin(p.gpu_indices, ","), ")");
      const scheduler::QueuedRun queued = q->second;
      absl::StatusOr<Run> run = deps_.runs->AssignRun(p.run_id, p.worker_id, where);
      if (!run.ok()) {
        PENDULUM_LOG(WARNING) << "assigning run " << p.run_id << ": " << run.status();
        if (absl::IsFailedPrecondition(run.status()) || absl::IsNotFound(run.status())) {
          queue_.erase(q);
        }
        continue;
      }
      queue_.erase(q);
      queue_reasons_.erase(p.run_id);
      ActiveRun a;
      a.run_id = p.run_id;
      a.attempt = run->attempt();
      a.owner = run->owner();
      a.worker_id = p.worker_id;
      a.state = pendulum::v1::STARTING;
      a.uses_slot = p.gpu_indices.empty();
      a.gpu_indices = p.gpu_indices;
      a.priority = queued.priority;
      a.request = queued.request;
      if (a.uses_slot) {
        ++w.slots_used;
      } else if (fractional) {
        w.gpu_shared[p.gpu_indices.front()] += p.gpu_fraction;
      } else {
        for (uint32_t g : p.gpu_indices) w.gpu_owner[g] = p.run_id;
      }
      w.runs.insert(p.run_id);

      pendulum::v1::ServerMessage message;
      pendulum::v1::Assignment* assign = message.mutable_assign();
      assign->set_run_id(p.run_id);
      assign->set_attempt(a.attempt);
      *assign->mutable_spec() = run->spec();
      for (uint32_t g : p.gpu_indices) assign->add_gpu_indices(g);
      if (fractional) assign->set_gpu_memory_fraction(p.gpu_fraction);
      if (a.attempt > 1) {
        absl::StatusOr<store::ResumePoint> resume = deps_.runs->GetResumePoint(p.run_id);
        if (resume.ok() && !resume->artifact_id.empty()) {
          assign->set_resume_artifact(resume->artifact_id);
          assign->set_resume_step(resume->step);
          supersede.push_back({p.run_id, a.attempt, resume->step});
        } else {
          supersede.push_back({p.run_id, a.attempt, -1});  // starts over: all earlier points superseded
        }
      }
      if (run->spec().init().from_run() > 0) {
        auto ckpt = deps_.artifacts->LatestCheckpoint(run->spec().init().from_run());
        if (ckpt.ok() && ckpt->has_value()) assign->set_init_artifact((*ckpt)->id);
      }
      if (run->spec().distill().teacher_run() > 0) {
        auto ckpt = deps_.artifacts->LatestCheckpoint(run->spec().distill().teacher_run());
        if (ckpt.ok() && ckpt->has_value()) assign->set_teacher_artifact((*ckpt)->id);
      }
      {
        absl::MutexLock fanout(&fanout_mu_);
        run_owner_[p.run_id] = run->owner();
      }
      active_[p.run_id] = std::move(a);
      SendTo(p.worker_id, message);
      Publish(*run);
    }
    for (const auto& preemption : plan.preemptions) PreemptLocked(preemption);
    for (const auto& [run_id, reason] : plan.queue_reasons) {
      if (queue_.count(run_id) == 0) continue;
      std::string& last = queue_reasons_[run_id];
      if (last == reason) continue;  // reasons change rarely; skip the write
      if (deps_.runs->SetQueueReason(run_id, reason).ok()) last = reason;
    }
  }
  // Outside mu_: MarkSuperseded waits for the writer thread, whose callbacks
  // must be able to run meanwhile.
  for (const auto& s : supersede) {
    absl::Status status = deps_.ingestor->MarkSuperseded(s.run_id, s.attempt, s.step);
    if (!status.ok()) {
      PENDULUM_LOG(WARNING) << "superseding points of run " << s.run_id << ": " << status;
    }
  }
}

}  // namespace pendulum::api
