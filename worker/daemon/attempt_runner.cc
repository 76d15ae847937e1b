#include "worker/daemon/attempt_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "worker/daemon/backoff.h"
#include "proto/io/event_stream.h"
#include "worker/daemon/file_tail.h"

namespace pendulum::daemon {
namespace {

namespace fs = std::filesystem;

// Pipe capacity asked of the kernel: a fast trainer fills it while the runner
// does the spool's fdatasync, so the next read picks up a larger group commit.
constexpr int kPipeBytes = 1 << 20;
constexpr size_t kReadBytes = 1 << 20;

// Writes via a temp file and rename. `durable` adds the fsyncs; only files
// that must survive a machine crash need them (they cost milliseconds that
// submit-to-running latency would pay).
absl::Status WriteFileAtomically(const fs::path& path, const std::string& data, bool durable) {
  const fs::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("creating ", tmp.string(), ": ", std::strerror(errno)));
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("writing ", tmp.string(), ": ", std::strerror(errno)));
    }
    off += static_cast<size_t>(n);
  }
  const int rc = durable ? ::fsync(fd) : 0;
  ::close(fd);
  if (rc != 0) return absl::UnavailableError(absl::StrCat("fsync ", tmp.string()));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("renaming ", tmp.string(), ": ", ec.message()));
  const int dfd = durable ? ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

std::string ExitMeaning(const ExitStatus& exit) {
  if (exit.signaled) return "";
  switch (exit.code) {
    case 1: return " (training failed)";
    case 2: return " (bad command line or invalid spec)";
    case 3: return " (data error: missing or corrupt dataset)";
    case 143: return " (stopped by SIGTERM)";
    default: return "";
  }
}

// Decodes a varint32 length at data[0..size): bytes used, 0 if incomplete, -1 if bad.
int DecodeLength(const char* data, size_t size, uint32_t* value) {
  uint64_t result = 0;
  for (size_t i = 0; i < size && i < 5; ++i) {
    const auto byte = static_cast<uint8_t>(data[i]);
    result |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
    if ((byte & 0x80) == 0) {
      if (result > io::kMaxEventBytes) return -1;
      *value = static_cast<uint32_t>(result);
      return static_cast<int>(i + 1);
    }
  }
  return size >= 5 ? -1 : 0;
}

}  // namespace

AttemptRunner::AttemptRunner(AttemptOptions options, v1::Assignment assignment,
                             ArtifactTransfer* artifacts, AttemptObserver* observer)
    : options_(std::move(options)),
      assignment_(std::move(assignment)),
      run_id_(assignment_.run_id()),
      attempt_(assignment_.attempt()),
      artifacts_(artifacts),
      observer_(observer) {}

absl::StatusOr<std::unique_ptr<AttemptRunner>> AttemptRunner::Recover(const fs::path& dir,
                                                                       AttemptObserver* observer) {
  v1::RunStatus status;
  bool have_status = false;
  {
    std::ifstream in(dir / "status.pb", std::ios::binary);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      have_status = status.ParseFromString(ss.str());
    }
  }
  int64_t run_id = 0;
  uint32_t attempt = 0;
  if (have_status) {
    run_id = status.run_id();
    attempt = status.attempt();
  } else {
    // Directory name is run-<id>-attempt-<a>.
    const std::string name = dir.filename().string();
    long long r = 0;
    unsigned a = 0;
    if (std::sscanf(name.c_str(), "run-%lld-attempt-%u", &r, &a) != 2) {
      return absl::InvalidArgumentError(absl::StrCat("not an attempt directory: ", dir.string()));
    }
    run_id = r;
    attempt = a;
  }
  std::unique_ptr<AttemptRunner> runner(new AttemptRunner(run_id, attempt, observer));
  runner->options_.dir = dir;
  PENDULUM_ASSIGN_OR_RETURN(runner->spool_, EventSpool::Open(dir / "spool"));
  if (have_status) {
    absl::MutexLock lock(&runner->mu_);
    runner->final_status_ = status;
    return runner;
  }
  runner->orphan_ = true;
  // The previous daemon died while this trainer ran. Its events pipe is gone,
  // so the trainer cannot report anything any more: make sure it is dead (it
  // may still burn a GPU), checking /proc that the pid is still our trainer.
  std::ifstream pid_in(dir / "trainer.pid");
  pid_t pid = 0;
  if (pid_in >> pid && pid > 0) {
    std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    std::stringstream ss;
    ss << cmdline.rdbuf();
    if (ss.str().find((dir / "out").string()) != std::string::npos) {
      PENDULUM_LOG(WARNING) << "killing orphaned trainer pid " << pid << " of " << dir.string();
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
  }
  return runner;
}

AttemptRunner::~AttemptRunner() {
  {
    absl::MutexLock lock(&mu_);
    if (child_) child_->SignalGroup(SIGKILL);
    uploads_closed_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (uploader_.joinable()) uploader_.join();
  if (!trainer_exited_.HasBeenNotified()) trainer_exited_.Notify();
  if (killer_.joinable()) killer_.join();
}

void AttemptRunner::Cancel(absl::Duration grace, const std::string& reason) {
  ChildProcess* child = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (cancel_requested_ || final_status_.has_value()) return;
    cancel_requested_ = true;
    cancel_reason_ = reason;
    cancel_grace_ = grace;
    child = child_.get();
    if (child == nullptr) return;  // RunThread sees the flag when it spawns
    StartKillerLocked(child, grace);
  }
  child->SignalGroup(SIGTERM);
}

void AttemptRunner::StartKillerLocked(ChildProcess* child, absl::Duration grace) {
  // The killer waits out the grace period off the caller's (stream) thread.
  killer_ = std::thread([this, child, grace] {
    if (!trainer_exited_.WaitForNotificationWithTimeout(grace)) {
      PENDULUM_LOG(WARNING) << "run " << run_id_ << "." << attempt_ << ": trainer ignored SIGTERM for "
                            << absl::FormatDuration(grace) << "; SIGKILL";
      child->SignalGroup(SIGKILL);
    }
  });
}

void AttemptRunner::CheckpointNow() {
  absl::MutexLock lock(&mu_);
  // To the trainer only: helpers in its group keep default SIGUSR1 handling.
  if (child_ && trainer_pid_.load() > 0 && !trainer_exited_.HasBeenNotified()) {
    ::kill(trainer_pid_.load(), SIGUSR1);
  }
}

void AttemptRunner::Abandon() {
  abandoned_ = true;
  absl::MutexLock lock(&mu_);
  if (child_) child_->SignalGroup(SIGKILL);
}

std::optional<v1::RunStatus> AttemptRunner::final_status() const {
  absl::MutexLock lock(&mu_);
  return final_status_;
}

absl::StatusOr<std::vector<std::string>> AttemptRunner::Prepare() {
  const fs::path& dir = options_.dir;
  std::error_code ec;
  fs::create_directories(dir / "out", ec);
  if (ec) return absl::UnavailableError(absl::StrCat("creating ", dir.string(), ": ", ec.message()));
  PENDULUM_RETURN_IF_ERROR(WriteFileAtomically(dir / "spec.pb", assignment_.spec().SerializeAsString(), /*durable=*/false));
  std::vector<std::string> argv = {options_.trainer_path, "--spec", (dir / "spec.pb").string(),
                                   "--out", (dir / "out").string(), "--events-fd", "3",
                                   "--run-id", std::to_string(run_id_),
                                   "--attempt", std::to_string(attempt_)};
  const std::pair<const std::string*, const char*> downloads[] = {
      {&assignment_.resume_artifact(), "resume"},
      {&assignment_.init_artifact(), "init"},
      {&assignment_.teacher_artifact(), "teacher"}};
  for (const auto& [id, what] : downloads) {
    if (id->empty()) continue;
    const std::string dest = (dir / (std::string(what) + ".ckpt")).string();
    // The server may be restarting; retry a few times before failing the run.
    Backoff backoff(BackoffOptions{absl::Milliseconds(200), absl::Seconds(3), 2.0});
    absl::Status status;
    for (int i = 0; i < 6; ++i) {
      status = artifacts_->Download(*id, dest);
      if (status.ok() || status.code() == absl::StatusCode::kNotFound ||
          status.code() == absl::StatusCode::kDataLoss) break;
      absl::SleepFor(backoff.Next());
    }
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("downloading the ", what, " checkpoint (artifact ",
                                                      *id, "): ", status.message()));
    }
    argv.push_back(std::string("--") + what);
    argv.push_back(dest);
  }
  return argv;
}

void AttemptRunner::Start() {
  auto spool = EventSpool::Open(options_.dir / "spool");
  if (!spool.ok()) {
    // Without a spool no event may be forwarded; report that failure itself.
    v1::RunStatus status;
    status.set_run_id(run_id_);
    status.set_attempt(attempt_);
    status.set_state(v1::FAILED);
    status.set_exit_code(-1);
    status.set_message(absl::StrCat("worker could not open its event spool: ", spool.status().message()));
    {
      absl::MutexLock lock(&mu_);
      final_status_ = status;
    }
    observer_->OnFinished();
    return;
  }
  spool_ = std::move(*spool);
  uploader_ = std::thread([this] { UploadThread(); });
  thread_ = std::thread([this] { RunThread(); });
}

void AttemptRunner::RunThread() {
  auto argv = Prepare();
  auto fail_before_start = [&](absl::Status why, v1::RunState state) {
    v1::RunStatus status;
    status.set_run_id(run_id_);
    status.set_attempt(attempt_);
    status.set_state(state);
    status.set_exit_code(-1);
    status.set_message(std::string(why.message()));
    Finish(std::move(status));
  };
  // Before the trainer runs, only a checkpoint artifact that is gone or
  // corrupt (NOT_FOUND / DATA_LOSS from its download) is the run's own
  // failure. The rest (the attempt directory, the disk, the server out of
  // reach) is this worker's: QUEUED asks the server to requeue the run and
  // hold this worker back.
  if (!argv.ok()) {
    const bool runs_fault = argv.status().code() == absl::StatusCode::kNotFound ||
                            argv.status().code() == absl::StatusCode::kDataLoss;
    return fail_before_start(argv.status(), runs_fault ? v1::FAILED : v1::QUEUED);
  }
  {
    absl::MutexLock lock(&mu_);
    if (abandoned_) {
      uploads_closed_ = true;
      return;  // daemon shutting down before the trainer started
    }
    if (cancel_requested_) {
      return fail_before_start(absl::CancelledError(absl::StrCat("cancelled before the trainer started: ",
                                                                 cancel_reason_)),
                               v1::CANCELLED);
    }
  }

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return fail_before_start(absl::UnavailableError(absl::StrCat("pipe: ", std::strerror(errno))), v1::QUEUED);
  }
  // Keep the write end above the child fds 0..9 so dup2 onto 3 always clears
  // FD_CLOEXEC (dup2 to the same fd would not).
  const int write_fd = ::fcntl(fds[1], F_DUPFD_CLOEXEC, 10);
  ::close(fds[1]);
  const int read_fd = fds[0];
  ::fcntl(read_fd, F_SETPIPE_SZ, kPipeBytes);  // best effort

  ChildOptions child_options;
  child_options.argv = *argv;
  std::string gpus;
  for (int i = 0; i < assignment_.gpu_indices_size(); ++i) {
    absl::StrAppend(&gpus, i ? "," : "", assignment_.gpu_indices(i));
  }
  // An empty list hides every GPU from a CPU-slot run.
  child_options.env_set = {{"CUDA_VISIBLE_DEVICES", gpus},
                           {"PENDULUM_RUN_ID", std::to_string(run_id_)},
                           {"PENDULUM_ATTEMPT", std::to_string(attempt_)}};
  // A fractional-GPU run shares its GPU: the trainer caps LibTorch's caching
  // allocator at this share of the device's memory (docs/trainer_protocol.md).
  if (assignment_.gpu_memory_fraction() > 0.0 && assignment_.gpu_memory_fraction() < 1.0) {
    child_options.env_set.emplace_back("PENDULUM_GPU_MEMORY_FRACTION",
                                       absl::StrCat(assignment_.gpu_memory_fraction()));
  }
  child_options.cwd = options_.dir.string();
  child_options.fd_map = {{write_fd, 3}};
  child_options.stdout_path = (options_.dir / "stderr.log").string();
  child_options.stderr_path = child_options.stdout_path;
  auto child = ChildProcess::Spawn(child_options);
  ::close(write_fd);  // the reader must see EOF when the trainer is gone
  if (!child.ok()) {
    // The trainer binary is missing or not executable here (a broken install,
    // or a binary being replaced): this worker's problem, not the run's.
    ::close(read_fd);
    return fail_before_start(child.status(), v1::QUEUED);
  }
  trainer_pid_ = (*child)->pid();
  WriteFileAtomically(options_.dir / "trainer.pid", std::to_string((*child)->pid()), /*durable=*/false)
      .IgnoreError();  // only used to find an orphan after a daemon crash
  ChildProcess* raw_child = child->get();
  bool cancelled_meanwhile = false;
  {
    absl::MutexLock lock(&mu_);
    child_ = std::move(*child);
    cancelled_meanwhile = cancel_requested_;
    if (cancelled_meanwhile) StartKillerLocked(raw_child, cancel_grace_);
  }
  if (cancelled_meanwhile) raw_child->SignalGroup(SIGTERM);
  PENDULUM_LOG(INFO) << "run " << run_id_ << "." << attempt_ << ": started " << options_.trainer_path
                     << " pid " << raw_child->pid() << " CUDA_VISIBLE_DEVICES=" << gpus;
  {
    v1::RunStatus running;
    running.set_run_id(run_id_);
    running.set_attempt(attempt_);
    running.set_state(v1::RUNNING);
    observer_->OnStatus(running);
  }

  const absl::Status pumped = PumpEvents(read_fd);
  ::close(read_fd);
  if (!pumped.ok()) {
    PENDULUM_LOG(ERROR) << "run " << run_id_ << "." << attempt_ << ": " << pumped.message()
                        << "; killing the trainer";
    raw_child->SignalGroup(SIGKILL);
  }
  const ExitStatus exit = raw_child->Wait();
  trainer_exited_.Notify();
  if (abandoned_) {
    absl::MutexLock lock(&mu_);
    uploads_closed_ = true;
    return;  // daemon shutdown: leave no status, the next daemon sees an orphan
  }
  bool cancelled;
  std::string reason;
  std::optional<v1::Finished> finished;
  {
    absl::MutexLock lock(&mu_);
    cancelled = cancel_requested_;
    reason = cancel_reason_;
    finished = finished_event_;
  }
  const std::string tail = ReadFileTail((options_.dir / "stderr.log").string(), options_.stderr_tail_bytes);
  v1::RunStatus status = MakeFinalStatus(run_id_, attempt_, exit, cancelled, reason, finished, tail,
                                         spool_->last_seq());
  if (!pumped.ok() && status.state() != v1::CANCELLED) {
    status.set_state(v1::FAILED);
    status.set_message(absl::StrCat("worker rejected the trainer's event stream: ", pumped.message(),
                                    "\n", status.message()));
  }
  PENDULUM_LOG(INFO) << "run " << run_id_ << "." << attempt_ << ": trainer " << exit.ToString() << " -> "
                     << v1::RunState_Name(status.state());
  Finish(std::move(status));
}

absl::Status AttemptRunner::PumpEvents(int fd) {
  std::string buffer;
  size_t pos = 0;
  std::string chunk(kReadBytes, '\0');
  while (true) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("reading events pipe: ", std::strerror(errno)));
    if (n == 0) {
      if (pos < buffer.size()) {
        // Trainer died mid-write: this record never completed, so it was
        // never an event (the trainer counts it as emitted only when written).
        PENDULUM_LOG(WARNING) << "run " << run_id_ << "." << attempt_ << ": events pipe closed inside a record ("
                              << buffer.size() - pos << " bytes dropped)";
      }
      return absl::OkStatus();
    }
    buffer.append(chunk.data(), static_cast<size_t>(n));
    std::vector<v1::TrainerEvent> events;
    while (true) {
      uint32_t length = 0;
      const int used = DecodeLength(buffer.data() + pos, buffer.size() - pos, &length);
      if (used < 0) return absl::DataLossError("corrupt event length on the events pipe");
      if (used == 0 || buffer.size() - pos < static_cast<size_t>(used) + length) break;
      v1::TrainerEvent event;
      if (!event.ParseFromArray(buffer.data() + pos + used, static_cast<int>(length))) {
        return absl::DataLossError(absl::StrCat("unparseable TrainerEvent after seq ", spool_->last_seq()));
      }
      pos += static_cast<size_t>(used) + length;
      events.push_back(std::move(event));
    }
    if (pos > 0 && pos * 2 >= buffer.size()) {
      buffer.erase(0, pos);
      pos = 0;
    }
    if (events.empty()) continue;
    // No-loss rule: spool (write + fdatasync) before the events can be sent.
    PENDULUM_RETURN_IF_ERROR(spool_->Append(events));
    {
      absl::MutexLock lock(&mu_);
      for (const auto& event : events) {
        if (event.has_checkpoint()) {
          v1::ArtifactSaved upload;
          upload.set_kind("checkpoint");
          upload.set_step(event.checkpoint().step());
          upload.set_path(event.checkpoint().path());
          uploads_.push_back(std::move(upload));
        } else if (event.has_artifact()) {
          uploads_.push_back(event.artifact());
        } else if (event.has_finished()) {
          finished_event_ = event.finished();
        }
      }
    }
    observer_->OnEventsSpooled();
  }
}

void AttemptRunner::UploadThread() {
  while (true) {
    v1::ArtifactSaved checkpoint;  // a checkpoint or a named artifact
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](AttemptRunner* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) {
            return !r->uploads_.empty() || r->uploads_closed_;
          },
          this));
      if (uploads_.empty()) return;
      checkpoint = uploads_.front();
      uploads_.pop_front();
    }
    fs::path path(checkpoint.path());
    if (path.is_relative()) path = options_.dir / "out" / path;
    Backoff backoff(BackoffOptions{absl::Milliseconds(200), absl::Seconds(5), 2.0});
    absl::Status status;
    for (int i = 0; i < options_.upload_attempts && !abandoned_; ++i) {
      auto info = artifacts_->Upload(path.string(), run_id_, attempt_, checkpoint.step(),
                                     checkpoint.kind(), checkpoint.name());
      status = info.status();
      if (status.ok()) {
        PENDULUM_LOG(INFO) << "run " << run_id_ << "." << attempt_ << ": uploaded " << checkpoint.kind() << " "
                           << checkpoint.name() << " step " << checkpoint.step() << " as artifact " << info->id();
        break;
      }
      if (status.code() == absl::StatusCode::kNotFound ||
          status.code() == absl::StatusCode::kInvalidArgument ||
          status.code() == absl::StatusCode::kPermissionDenied) {
        break;
      }
      absl::SleepFor(backoff.Next());
    }
    if (!status.ok()) {
      PENDULUM_LOG(ERROR) << "run " << run_id_ << "." << attempt_ << ": " << checkpoint.kind() << " "
                          << path.string() << " not uploaded: " << status.message();
      absl::MutexLock lock(&mu_);
      upload_errors_.push_back(absl::StrCat(checkpoint.kind(), " ",
                                            checkpoint.name().empty() ? path.string() : checkpoint.name(),
                                            " not uploaded: ", status.message()));
    }
  }
}

void AttemptRunner::Finish(v1::RunStatus status) {
  {
    absl::MutexLock lock(&mu_);
    uploads_closed_ = true;
  }
  // Every checkpoint is on the server before the final status is reported.
  if (uploader_.joinable()) uploader_.join();
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& e : upload_errors_) {
      status.set_message(status.message().empty() ? e : absl::StrCat(status.message(), "; ", e));
    }
  }
  status.set_last_seq(spool_ ? spool_->last_seq() : 0);
  absl::Status persisted = WriteFileAtomically(options_.dir / "status.pb", status.SerializeAsString(), /*durable=*/true);
  if (!persisted.ok()) {
    PENDULUM_LOG(ERROR) << "persisting final status: " << persisted.message();
  }
  {
    absl::MutexLock lock(&mu_);
    final_status_ = std::move(status);
  }
  observer_->OnFinished();
}

v1::RunStatus AttemptRunner::MakeFinalStatus(int64_t run_id, uint32_t attempt, const ExitStatus& exit,
                                             bool cancelled, const std::string& cancel_reason,
                                             const std::optional<v1::Finished>& finished,
                                             const std::string& stderr_tail, uint64_t last_seq) {
  v1::RunStatus status;
  status.set_run_id(run_id);
  status.set_attempt(attempt);
  status.set_exit_code(exit.ShellCode());
  status.set_last_seq(last_seq);
  if (cancelled) {
    status.set_state(v1::CANCELLED);
    status.set_message(absl::StrCat("cancelled", cancel_reason.empty() ? "" : ": ", cancel_reason,
                                    " (trainer ", exit.ToString(), ")"));
    return status;
  }
  if (exit.ok() && finished.has_value() && finished->ok()) {
    status.set_state(v1::SUCCEEDED);
    status.set_message(finished->message());
    return status;
  }
  status.set_state(v1::FAILED);
  std::string message = absl::StrCat("pendulum-train ", exit.ToString(), ExitMeaning(exit));
  if (exit.ok()) {
    absl::StrAppend(&message, finished.has_value() ? " but its Finished event says ok=false"
                                                   : " without a Finished event (trainer protocol violation)");
  }
  if (finished.has_value() && !finished->message().empty()) {
    absl::StrAppend(&message, ": ", SanitizeUtf8(finished->message()));
  }
  if (!stderr_tail.empty()) {
    absl::StrAppend(&message, "\n--- last ", stderr_tail.size(), " bytes of stderr ---\n", stderr_tail);
  }
  status.set_message(message);
  return status;
}

}  // namespace pendulum::daemon
