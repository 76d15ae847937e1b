#pragma once
// ChildProcess: one spawned program in its own process group (RAII). Signals
// go to the whole group, so helpers a trainer forks die with it. The
// destructor SIGKILLs the group and reaps the child if nobody waited for it.
//
// Threads: Wait/WaitFor may run on one thread while another calls
// SignalGroup/Terminate. The child is first waited for without reaping
// (waitid WNOWAIT), so its pid/pgid cannot be reused while a signal might
// still be sent; reaping happens under the lock, non-blocking.
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pendulum::daemon {

// How a child ended.
struct ExitStatus {
  bool signaled = false;
  int code = 0;    // exit code when !signaled
  int signal = 0;  // terminating signal when signaled
  // Shell convention: the exit code, or 128 + signal number.
  int ShellCode() const { return signaled ? 128 + signal : code; }
  bool ok() const { return !signaled && code == 0; }
  std::string ToString() const;  // "exit code 3" / "killed by signal 9 (Killed)"
};

struct ChildOptions {
  std::vector<std::string> argv;                              // argv[0] is the program path
  std::vector<std::pair<std::string, std::string>> env_set;   // added/overridden variables
  std::string cwd;                                            // empty: inherit
  std::vector<std::pair<int, int>> fd_map;                    // parent fd -> child fd
  std::string stdout_path;                                    // empty: /dev/null
  std::string stderr_path;                                    // empty: /dev/null; may equal stdout_path
};

class ChildProcess {
 public:
  // Starts the program (posix_spawn, new process group, default signal
  // dispositions). Fails with NOT_FOUND / PERMISSION_DENIED / UNAVAILABLE
  // naming the program when it cannot be started.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(const ChildOptions& options);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Sends `sig` to the child's process group; a no-op once it was reaped.
  void SignalGroup(int sig);

  // Blocks until the child exits, kills what is left of its group, reaps it.
  ExitStatus Wait();
  // Like Wait but gives up after `timeout` (std::nullopt: still running).
  std::optional<ExitStatus> WaitFor(absl::Duration timeout);

  // SIGTERM to the group, SIGKILL after `grace` if the child is still alive;
  // returns how it ended. Returns immediately if it already ended.
  ExitStatus Terminate(absl::Duration grace);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  // Reaps the (already exited) child; caller holds mu_.
  ExitStatus ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // true if the child has exited (zombie or reaped); non-blocking.
  bool ExitedNoReap();

  const pid_t pid_;
  absl::Mutex mu_;
  std::optional<ExitStatus> status_ ABSL_GUARDED_BY(mu_);  // set once reaped
};

}  // namespace pendulum::daemon
