#pragma once
// ServerProcess: runs the real pendulum-server binary (from PENDULUM_BINARY_DIR)
// on 127.0.0.1:0 with a real SQLite file, reads the chosen port from its
// "listening on HOST:PORT" line, and kills/reaps it in the destructor.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/test_paths.h"

extern char** environ;

namespace pendulum::testing {

inline std::filesystem::path ServerBinary() {
  return BinaryDir() / "server" / "pendulum-server";
}

// Runs a command to completion; returns its exit status and stdout.
inline int RunCommand(const std::vector<std::string>& argv, std::string* out, const std::filesystem::path& dir) {
  std::filesystem::path out_file = dir / "command.out";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(out_file);
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class ServerProcess {
 public:
  ServerProcess(std::filesystem::path dir, std::vector<std::string> extra_flags = {})
      : dir_(std::move(dir)), extra_flags_(std::move(extra_flags)) {}
  ~ServerProcess() { Kill(SIGKILL); }

  std::string db() const { return (dir_ / "pendulum.db").string(); }

  // Starts the server and waits (up to 30 s) for its "listening on" line.
  void Start() {
    ++starts_;
    log_ = dir_ / absl::StrCat("server-", starts_, ".log");
    std::vector<std::string> argv = {ServerBinary().string(), "--db", db(), "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ), 0)
        << "cannot start " << argv[0];
    posix_spawn_file_actions_destroy(&actions);
    absl::Time end = absl::Now() + absl::Seconds(30);
    while (absl::Now() < end) {
      std::ifstream in(log_);
      std::string line;
      while (std::getline(in, line)) {
        auto pos = line.find("listening on ");
        if (pos != std::string::npos) {
          address_ = line.substr(pos + 13);
          return;
        }
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        FAIL() << "pendulum-server exited during start-up; log:\n" << Log();
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    FAIL() << "pendulum-server did not print 'listening on' within 30 s; log:\n" << Log();
  }

  // Sends `sig` and reaps; returns the exit status (128+signal if killed).
  int Kill(int sig) {
    if (pid_ == 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Creates a token through `pendulum-server token create` (no server needed).
  std::string CreateToken(const std::string& user, const std::string& role) {
    std::string out;
    int rc = RunCommand({ServerBinary().string(), "token", "create", "--db", db(), "--user", user, "--role", role},
                        &out, dir_);
    EXPECT_EQ(rc, 0) << out;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }

  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }

 private:
  std::filesystem::path dir_;
  std::vector<std::string> extra_flags_;
  std::filesystem::path log_;
  pid_t pid_ = 0;
  int starts_ = 0;
  std::string address_;
};

}  // namespace pendulum::testing
