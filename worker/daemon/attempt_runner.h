#pragma once
// AttemptRunner: executes one run attempt on this worker. On its own thread it
// prepares the attempt directory (spec.pb, downloaded resume/init/teacher
// checkpoints), starts pendulum-train as a ChildProcess with an events pipe,
// spools every event (EventSpool::Append, fsync) before it can be forwarded,
// uploads every checkpoint the trainer reports, and when the trainer is gone
// persists the attempt's final RunStatus (status.pb) so that a restarted
// daemon can still report it. An attempt that never got its trainer started
// for a reason of this worker's (binary missing or not executable, disk,
// server out of reach) ends QUEUED: the server requeues the run and holds
// this worker back; only a missing or corrupt checkpoint artifact is FAILED.
//
// Attempt directory layout: spec.pb, stderr.log (trainer stdout+stderr),
// trainer.pid, out/ (trainer --out), spool/, status.pb (once finished).
//
// Threads: the runner thread plus an uploader thread; Cancel/CheckpointNow and
// the accessors may be called from any thread.
#include <sys/types.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "pendulum/v1/worker_service.pb.h"
#include "worker/daemon/artifact_transfer.h"
#include "worker/daemon/child_process.h"
#include "worker/daemon/event_spool.h"

namespace pendulum::daemon {

// Callbacks into the owner (the Worker); called on the runner's threads,
// without any runner lock held.
class AttemptObserver {
 public:
  virtual ~AttemptObserver() = default;
  // New events are in the spool, ready to forward.
  virtual void OnEventsSpooled() = 0;
  // A non-terminal state change (RUNNING) to forward.
  virtual void OnStatus(const v1::RunStatus& status) = 0;
  // The attempt is over: final_status() is set and every upload is done.
  virtual void OnFinished() = 0;
};

struct AttemptOptions {
  std::string trainer_path;              // pendulum-train (or a protocol-compatible program)
  std::filesystem::path dir;             // this attempt's directory
  size_t stderr_tail_bytes = 4096;
  int upload_attempts = 8;               // tries per checkpoint upload
};

class AttemptRunner {
 public:
  // A fresh attempt for `assignment`.
  AttemptRunner(AttemptOptions options, v1::Assignment assignment, ArtifactTransfer* artifacts,
                AttemptObserver* observer);
  // An attempt recovered from disk after a daemon restart. `status` is its
  // persisted final status, or nullopt for an orphan (the daemon died while
  // its trainer ran; the trainer is killed and the attempt is not resumed).
  static absl::StatusOr<std::unique_ptr<AttemptRunner>> Recover(const std::filesystem::path& dir,
                                                                AttemptObserver* observer);
  ~AttemptRunner();  // kills a still-running trainer, joins the threads

  // Opens the spool and starts the runner thread (fresh attempts only). If
  // the spool cannot be opened the attempt finishes FAILED at once
  // (observer->OnFinished() is called before Start returns).
  void Start();
  // Stops the attempt: SIGTERM to the trainer's group, SIGKILL after `grace`.
  // The final status is CANCELLED. Safe before the trainer started.
  void Cancel(absl::Duration grace, const std::string& reason);
  // Asks the trainer to checkpoint now (SIGUSR1).
  void CheckpointNow();
  // The daemon is shutting down: kill the trainer but do NOT record a final
  // status, so the next daemon treats the attempt as an orphan (requeued by the
  // server) instead of reporting a failure the run did not cause.
  void Abandon();

  int64_t run_id() const { return run_id_; }
  uint32_t attempt() const { return attempt_; }
  // Non-null after Start() or Recover() (except when opening it failed).
  EventSpool* spool() const { return spool_.get(); }
  const std::filesystem::path& dir() const { return options_.dir; }
  bool orphan() const { return orphan_; }
  // Set once the attempt is over (and all uploads are done).
  std::optional<v1::RunStatus> final_status() const;
  pid_t trainer_pid() const { return trainer_pid_.load(); }

  // Builds the FAILED/SUCCEEDED/CANCELLED status from how the trainer ended.
  // Public for tests.
  static v1::RunStatus MakeFinalStatus(int64_t run_id, uint32_t attempt, const ExitStatus& exit,
                                       bool cancelled, const std::string& cancel_reason,
                                       const std::optional<v1::Finished>& finished,
                                       const std::string& stderr_tail, uint64_t last_seq);

 private:
  AttemptRunner(int64_t run_id, uint32_t attempt, AttemptObserver* observer)
      : run_id_(run_id), attempt_(attempt), observer_(observer) {}
  void RunThread();
  // Prepares the directory, downloads artifacts; returns the trainer argv.
  absl::StatusOr<std::vector<std::string>> Prepare();
  // Reads framed events until EOF; spools them; queues checkpoint uploads.
  absl::Status PumpEvents(int fd);
  void UploadThread();
  void Finish(v1::RunStatus status);
  void StartKillerLocked(ChildProcess* child, absl::Duration grace) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  AttemptOptions options_;
  v1::Assignment assignment_;
  const int64_t run_id_;
  const uint32_t attempt_;
  ArtifactTransfer* artifacts_ = nullptr;  // not owned
  AttemptObserver* observer_;              // not owned
  std::unique_ptr<EventSpool> spool_;
  bool orphan_ = false;

  std::thread thread_;
  std::thread uploader_;
  std::thread killer_;
  absl::Notification trainer_exited_;
  std::atomic<pid_t> trainer_pid_{0};
  std::atomic<bool> abandoned_{false};

  mutable absl::Mutex mu_;
  std::unique_ptr<ChildProcess> child_ ABSL_GUARDED_BY(mu_);
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::string cancel_reason_ ABSL_GUARDED_BY(mu_);
  absl::Duration cancel_grace_ ABSL_GUARDED_BY(mu_) = absl::Seconds(10);
  std::optional<v1::Finished> finished_event_ ABSL_GUARDED_BY(mu_);
  // Files to upload: checkpoints (kind "checkpoint", no name) and named
  // artifacts (ArtifactSaved events), in event order.
  std::deque<v1::ArtifactSaved> uploads_ ABSL_GUARDED_BY(mu_);
  // Uploads that failed for good ("kind path: reason"), appended to the final
  // status message so the user sees them in `pendulum show`, not only here.
  std::vector<std::string> upload_errors_ ABSL_GUARDED_BY(mu_);
  bool uploads_closed_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<v1::RunStatus> final_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pendulum::daemon
