#include "worker/daemon/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/log.h"

extern char** environ;

namespace pendulum::daemon {

std::string ExitStatus::ToString() const {
  if (signaled) return absl::StrCat("killed by signal ", signal, " (", strsignal(signal), ")");
  return absl::StrCat("exit code ", code);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(const ChildOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("ChildOptions.argv is empty");
  const std::string& program = options.argv[0];
  if (::access(program.c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("program not found: ", program));
  }
  if (::access(program.c_str(), X_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("program not executable: ", program));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group (pgid = pid) so cancel can signal the trainer and its
  // helpers at once; default dispositions and an empty mask, whatever the
  // daemon's threads have blocked or ignored (SIGPIPE in particular).
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  const std::string out = options.stdout_path.empty() ? "/dev/null" : options.stdout_path;
  const std::string err = options.stderr_path.empty() ? "/dev/null" : options.stderr_path;
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (err == out) {
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  } else {
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  for (const auto& [from, to] : options.fd_map) {
    // dup2 onto itself would keep O_CLOEXEC; callers pass fds >= 10 (see
    // AttemptRunner) so this never happens for the mapped targets 3..9.
    posix_spawn_file_actions_adddup2(&actions, from, to);
  }
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());

  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq) env[std::string(static_cast<const char*>(*e), eq)] = std::string(eq + 1);
  }
  for (const auto& [k, v] : options.env_set) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = options.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = 0;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("starting ", program, ": ", std::strerror(rc)));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid));
}

ChildProcess::~ChildProcess() {
  absl::MutexLock lock(&mu_);
  if (status_.has_value()) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
  }
}

void ChildProcess::SignalGroup(int sig) {
  absl::MutexLock lock(&mu_);
  if (status_.has_value()) return;
  // The child is not reaped yet, so pid_ (and pgid pid_) still belong to it.
  if (::kill(-pid_, sig) != 0 && errno == ESRCH) ::kill(pid_, sig);
}

bool ChildProcess::ExitedNoReap() {
  siginfo_t info;
  std::memset(&info, 0, sizeof(info));
  while (true) {
    const int rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0) return info.si_pid == pid_;
    if (errno == EINTR) continue;
    return true;  // ECHILD: someone reaped it already
  }
}

ExitStatus ChildProcess::ReapLocked() {
  if (status_.has_value()) return *status_;
  // The group leader is a zombie, so its pgid is still reserved: kill any
  // stragglers (helpers that would keep the events pipe open) before reaping.
  ::kill(-pid_, SIGKILL);
  int wstatus = 0;
  ExitStatus status;
  pid_t rc;
  do {
    rc = ::waitpid(pid_, &wstatus, 0);
  } while (rc < 0 && errno == EINTR);
  if (rc == pid_) {
    if (WIFSIGNALED(wstatus)) {
      status.signaled = true;
      status.signal = WTERMSIG(wstatus);
    } else {
      status.code = WEXITSTATUS(wstatus);
    }
  } else {
    PENDULUM_LOG(ERROR) << "waitpid(" << pid_ << "): " << std::strerror(errno);
    status.code = -1;
  }
  status_ = status;
  return status;
}

ExitStatus ChildProcess::Wait() {
  siginfo_t info;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (status_.has_value()) return *status_;
    }
    // Blocks without the lock and without reaping (WNOWAIT).
    const int rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT);
    if (rc < 0 && errno == EINTR) continue;
    absl::MutexLock lock(&mu_);
    return ReapLocked();
  }
}

std::optional<ExitStatus> ChildProcess::WaitFor(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration sleep = absl::Milliseconds(1);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (status_.has_value()) return *status_;
    }
    if (ExitedNoReap()) {
      absl::MutexLock lock(&mu_);
      return ReapLocked();
    }
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(std::min(sleep, deadline - absl::Now()));
    sleep = std::min(sleep * 2, absl::Milliseconds(20));
  }
}

ExitStatus ChildProcess::Terminate(absl::Duration grace) {
  SignalGroup(SIGTERM);
  if (auto status = WaitFor(grace)) return *status;
  PENDULUM_LOG(WARNING) << "pid " << pid_ << " still running " << absl::FormatDuration(grace)
                        << " after SIGTERM; sending SIGKILL";
  SignalGroup(SIGKILL);
  return Wait();
}

}  // namespace pendulum::daemon
