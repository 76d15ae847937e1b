#include "worker/daemon/worker.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "grpcpp/grpcpp.h"

namespace pendulum::daemon {
namespace {
namespace fs = std::filesystem;
constexpr char kVersion[] = "pendulum-worker 0.1";
}  // namespace

// Forwards a runner's callbacks to the Worker.
class Worker::Observer : public AttemptObserver {
 public:
  explicit Observer(Worker* worker) : worker_(worker) {}
  void OnEventsSpooled() override { worker_->Wake(); }
  void OnStatus(const v1::RunStatus& status) override {
    {
      absl::MutexLock lock(&worker_->mu_);
      v1::WorkerMessage message;
      *message.mutable_status() = status;
      worker_->outbox_.push_back(std::move(message));
    }
    worker_->Wake();
  }
  void OnFinished() override { worker_->Wake(); }

 private:
  Worker* worker_;
};

struct Worker::Attempt {
  std::unique_ptr<Observer> observer;   // outlives runner (declared first)
  std::unique_ptr<AttemptRunner> runner;
  // Guarded by Worker::mu_:
  uint64_t sent_seq = 0;      // highest seq written on the current stream
  bool status_sent = false;   // final status written on the current stream
};

Worker::Worker(WorkerOptions options, std::shared_ptr<grpc::ChannelInterface> channel)
    : options_(std::move(options)),
      stub_(v1::WorkerService::NewStub(channel)),
      artifacts_(stub_.get(), options_.token) {
  if (!gpu_probe_.available()) {
    PENDULUM_LOG(INFO) << "NVML not available (" << gpu_probe_.unavailable_reason() << "); using "
                       << (options_.fake_gpus > 0 ? absl::StrCat(options_.fake_gpus, " fake GPU slots")
                                                  : absl::StrCat(options_.slots, " CPU slots"));
  }
}

Worker::~Worker() {
  Shutdown();
  std::map<Key, std::shared_ptr<Attempt>> attempts;
  {
    absl::MutexLock lock(&mu_);
    attempts.swap(attempts_);
  }
  for (auto& [key, attempt] : attempts) {
    if (attempt->runner) attempt->runner->Abandon();
  }
  attempts.clear();  // joins runner threads, kills trainers (outside mu_)
}

absl::Status Worker::Recover() {
  const fs::path root = fs::path(options_.work_dir) / "attempts";
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("creating ", root.string(), ": ", ec.message()));
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    auto attempt = std::make_shared<Attempt>();
    attempt->observer = std::make_unique<Observer>(this);
    auto runner = AttemptRunner::Recover(entry.path(), attempt->observer.get());
    if (!runner.ok()) {
      PENDULUM_LOG(ERROR) << "cannot recover " << entry.path().string() << ": " << runner.status();
      continue;
    }
    attempt->runner = std::move(*runner);
    EventSpool* spool = attempt->runner->spool();
    PENDULUM_LOG(INFO) << "recovered run " << attempt->runner->run_id() << "." << attempt->runner->attempt()
                       << (attempt->runner->orphan() ? " (orphan: the trainer died with the old daemon)"
                                                     : " (finished)")
                       << ": " << spool->pending_events() << " unacked events, "
                       << spool->recovery().torn_bytes_dropped << " torn bytes dropped";
    absl::MutexLock lock(&mu_);
    attempts_[{attempt->runner->run_id(), attempt->runner->attempt()}] = std::move(attempt);
  }
  return absl::OkStatus();
}

void Worker::Wake() {
  absl::MutexLock lock(&mu_);
  ++wake_gen_;
}

void Worker::Shutdown() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  if (live_context_ != nullptr) live_context_->TryCancel();
}

std::vector<v1::GpuInfo> Worker::Gpus() const {
  if (gpu_probe_.available()) return gpu_probe_.Query();
  return FakeGpus(options_.fake_gpus);
}

WorkerStats Worker::Stats() const {
  WorkerStats stats;
  stats.gpus = Gpus();
  absl::MutexLock lock(&mu_);
  stats.connected = connected_;
  for (const auto& [key, attempt] : attempts_) {
    if (attempt->runner->final_status().has_value() || attempt->runner->orphan()) {
      ++stats.finishing;
    } else {
      ++stats.running;
    }
    if (EventSpool* spool = attempt->runner->spool()) {
      stats.spool_events += spool->pending_events();
      stats.spool_bytes += spool->pending_bytes();
    }
  }
  return stats;
}

v1::WorkerMessage Worker::MakeHeartbeat() const {
  const WorkerStats stats = Stats();
  v1::WorkerMessage message;
  auto* hb = message.mutable_heartbeat();
  for (const auto& gpu : stats.gpus) *hb->add_gpus() = gpu;
  hb->set_spool_bytes(stats.spool_bytes);
  hb->set_spool_events(stats.spool_events);
  return message;
}

void Worker::Run() {
  Backoff backoff(options_.backoff);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    if (Session()) backoff.Reset();
    const absl::Duration delay = backoff.Next();
    absl::MutexLock lock(&mu_);
    if (stopping_) break;
    PENDULUM_LOG(INFO) << "reconnecting in " << absl::FormatDuration(delay);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), delay);
  }
}

bool Worker::Session() {
  // Register on every (re)connect: idempotent for the same worker id, and it
  // tells a restarted server who we are before the stream opens.
  v1::RegisterRequest request;
  request.set_worker_id(options_.worker_id);
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  request.set_hostname(host);
  for (const auto& gpu : Gpus()) *request.add_gpus() = gpu;
  if (request.gpus().empty()) request.set_slots(static_cast<uint32_t>(options_.slots));
  for (const auto& [k, v] : options_.labels) (*request.mutable_labels())[k] = v;
  request.set_version(kVersion);
  v1::RegisterResponse response;
  {
    auto ctx = MakeAuthedContext(options_.token);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
    // Wait for the channel to (re)connect within the deadline instead of
    // failing fast with its last error: after a server restart a fail-fast
    // call kept returning the stale "connection refused" / "tcp handshaker
    // shutdown" for seconds after the server was back, past the lease.
    ctx->set_wait_for_ready(true);
    const grpc::Status status = stub_->Register(ctx.get(), request, &response);
    if (!status.ok()) {
      PENDULUM_LOG(WARNING) << "Register with the server failed: " << status.error_message() << " (code "
                            << status.error_code() << ")";
      return false;
    }
  }
  const absl::Duration heartbeat =
      absl::Seconds(response.heartbeat_seconds() > 0 ? response.heartbeat_seconds() : 5);

  auto ctx = MakeAuthedContext(options_.token);
  auto stream = stub_->Connect(ctx.get());
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_worker_id(options_.worker_id);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    live_context_ = ctx.get();
    stream_broken_ = false;
    outbox_.clear();
    for (auto& [key, attempt] : attempts_) {
      // Resend everything not yet acked (no-loss rule, step 4).
      attempt->sent_seq = attempt->runner->spool() ? attempt->runner->spool()->acked_seq() : 0;
      attempt->status_sent = false;
      // Orphans are not "held": their trainer is gone and they get no final
      // status, so the server requeues the run; only their events are sent.
      if (attempt->runner->orphan()) continue;
      auto* run = hello.mutable_hello()->add_runs();
      run->set_run_id(key.first);
      run->set_attempt(key.second);
      if (!attempt->runner->final_status().has_value() && attempt->runner->trainer_pid() > 0) {
        v1::WorkerMessage running;
        running.mutable_status()->set_run_id(key.first);
        running.mutable_status()->set_attempt(key.second);
        running.mutable_status()->set_state(v1::RUNNING);
        outbox_.push_back(std::move(running));
      }
    }
  }
  bool hello_sent = stream->Write(hello);
  if (hello_sent) {
    PENDULUM_LOG(INFO) << "connected as " << options_.worker_id << " (lease " << response.lease_seconds()
                       << " s, heartbeat " << absl::FormatDuration(heartbeat) << ")";
    absl::MutexLock lock(&mu_);
    connected_ = true;
  }

  std::thread reader([this, &stream] {
    v1::ServerMessage message;
    while (stream->Read(&message)) HandleServerMessage(message);
    absl::MutexLock lock(&mu_);
    stream_broken_ = true;
  });

  absl::Time next_heartbeat = absl::Now();
  bool ok = hello_sent;
  while (ok) {
    uint64_t gen;
    {
      absl::MutexLock lock(&mu_);
      gen = wake_gen_;
    }
    bool more = false;
    std::vector<v1::WorkerMessage> messages = CollectOutgoing(&more);
    if (absl::Now() >= next_heartbeat) {
      messages.push_back(MakeHeartbeat());
      next_heartbeat = absl::Now() + heartbeat;
    }
    // Writes happen without mu_: a stream write may block on flow control.
    for (const auto& message : messages) {
      if (!stream->Write(message)) {
        ok = false;
        break;
      }
    }
    if (!ok) break;
    // Final statuses just written: those attempts are done on this worker.
    std::vector<std::shared_ptr<Attempt>> retired;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = attempts_.begin(); it != attempts_.end();) {
        Attempt& a = *it->second;
        const bool orphan_done = a.runner->orphan() && a.runner->spool()->pending_events() == 0;
        if (a.status_sent || orphan_done) {
          retired.push_back(it->second);
          it = attempts_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& attempt : retired) {
      const fs::path dir = attempt->runner->dir();
      PENDULUM_LOG(INFO) << "run " << attempt->runner->run_id() << "." << attempt->runner->attempt()
                         << " delivered; removing " << dir.string();
      attempt.reset();  // joins its threads outside mu_
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
    if (more) continue;
    absl::MutexLock lock(&mu_);
    struct Ready {
      Worker* w;
      uint64_t gen;
      bool operator()() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return w->wake_gen_ != gen || w->stopping_ || w->stream_broken_;
      }
    } ready{this, gen};
    mu_.AwaitWithTimeout(absl::Condition(&ready), next_heartbeat - absl::Now());
    if (stopping_ || stream_broken_) ok = false;
  }
  ctx->TryCancel();
  reader.join();
  const grpc::Status status = stream->Finish();
  {
    absl::MutexLock lock(&mu_);
    live_context_ = nullptr;
    connected_ = false;
  }
  PENDULUM_LOG(WARNING) << "stream to the server ended: "
                        << (status.ok() ? std::string("ok") : status.error_message());
  return hello_sent;
}

std::vector<v1::WorkerMessage> Worker::CollectOutgoing(bool* more) {
  std::vector<v1::WorkerMessage> messages;
  absl::MutexLock lock(&mu_);
  messages.swap(outbox_);
  for (auto& [key, attempt] : attempts_) {
    EventSpool* spool = attempt->runner->spool();
    if (spool == nullptr) continue;
    if (spool->last_seq() > attempt->sent_seq) {
      // Events leave only from the spool, i.e. after their fdatasync.
      std::vector<v1::TrainerEvent> events =
          spool->Pending(attempt->sent_seq, options_.max_batch_events, options_.max_batch_bytes);
      if (!events.empty()) {
        v1::WorkerMessage message;
        auto* batch = message.mutable_events();
        batch->set_run_id(key.first);
        batch->set_attempt(key.second);
        attempt->sent_seq = events.back().seq();
        for (auto& event : events) *batch->add_events() = std::move(event);
        messages.push_back(std::move(message));
        if (spool->last_seq() > attempt->sent_seq) *more = true;
      }
    }
    // The final status goes out only once the server holds every event, so a
    // run is never SUCCEEDED on the server with points still in flight.
    auto final_status = attempt->runner->final_status();
    if (final_status.has_value() && !attempt->status_sent && spool->acked_seq() >= spool->last_seq()) {
      v1::WorkerMessage message;
      *message.mutable_status() = *final_status;
      messages.push_back(std::move(message));
      attempt->status_sent = true;
    }
  }
  return messages;
}

void Worker::HandleServerMessage(const v1::ServerMessage& message) {
  switch (message.msg_case()) {
    case v1::ServerMessage::kAssign:
      StartAttempt(message.assign());
      break;
    case v1::ServerMessage::kAck: {
      const auto& ack = message.ack();
      std::shared_ptr<Attempt> attempt;
      {
        absl::MutexLock lock(&mu_);
        auto it = attempts_.find({ack.run_id(), ack.attempt()});
        if (it != attempts_.end()) attempt = it->second;
      }
      if (attempt && attempt->runner->spool()) {
        // Only now may the spool drop these events (no-loss rule, step 3).
        absl::Status acked = attempt->runner->spool()->Ack(ack.acked_seq());
        if (!acked.ok()) {
          PENDULUM_LOG(ERROR) << "spool ack: " << acked;
        }
        Wake();
      }
      break;
    }
    case v1::ServerMessage::kCancel: {
      const auto& cancel = message.cancel();
      std::shared_ptr<Attempt> attempt;
      {
        absl::MutexLock lock(&mu_);
        auto it = attempts_.find({cancel.run_id(), cancel.attempt()});
        if (it != attempts_.end()) attempt = it->second;
      }
      const absl::Duration grace = absl::Seconds(cancel.grace_seconds() > 0 ? cancel.grace_seconds() : 10);
      PENDULUM_LOG(INFO) << "cancel run " << cancel.run_id() << "." << cancel.attempt() << " (grace "
                         << absl::FormatDuration(grace) << "): " << cancel.reason();
      if (attempt && !attempt->runner->orphan()) {
        attempt->runner->Cancel(grace, cancel.reason());
      } else {
        // Nothing of it runs here (never received, or already gone): confirm
        // so the server does not wait in CANCELLING.
        v1::WorkerMessage reply;
        auto* status = reply.mutable_status();
        status->set_run_id(cancel.run_id());
        status->set_attempt(cancel.attempt());
        status->set_state(v1::CANCELLED);
        status->set_message("cancelled: the attempt was not running on worker " + options_.worker_id);
        absl::MutexLock lock(&mu_);
        outbox_.push_back(std::move(reply));
        ++wake_gen_;
      }
      break;
    }
    case v1::ServerMessage::kCheckpointNow: {
      const auto& request = message.checkpoint_now();
      std::shared_ptr<Attempt> attempt;
      {
        absl::MutexLock lock(&mu_);
        auto it = attempts_.find({request.run_id(), request.attempt()});
        if (it != attempts_.end()) attempt = it->second;
      }
      if (attempt) attempt->runner->CheckpointNow();
      break;
    }
    default:
      PENDULUM_LOG(WARNING) << "ignoring an unknown server message (newer server?)";
  }
}

void Worker::StartAttempt(const v1::Assignment& assignment) {
  const Key key{assignment.run_id(), assignment.attempt()};
  auto attempt = std::make_shared<Attempt>();
  attempt->observer = std::make_unique<Observer>(this);
  AttemptOptions options;
  options.trainer_path = options_.trainer_path;
  options.dir = fs::path(options_.work_dir) / "attempts" /
                absl::StrCat("run-", key.first, "-attempt-", key.second);
  attempt->runner = std::make_unique<AttemptRunner>(std::move(options), assignment, &artifacts_,
                                                    attempt->observer.get());
  {
    absl::MutexLock lock(&mu_);
    if (attempts_.count(key) != 0) {
      PENDULUM_LOG(INFO) << "run " << key.first << "." << key.second << " already here; duplicate assignment ignored";
      return;
    }
    attempts_[key] = attempt;
  }
  PENDULUM_LOG(INFO) << "assigned run " << key.first << "." << key.second
                     << (assignment.resume_artifact().empty()
                             ? std::string()
                             : absl::StrCat(" (resume from step ", assignment.resume_step(), ")"));
  attempt->runner->Start();  // outside mu_: it may call back into the observer
}

}  // namespace pendulum::daemon
