#pragma once
// A real pendulum-server process for integration tests: started on a free
// loopback port (--listen 127.0.0.1:0; the address is read from its
// "listening on HOST:PORT" line) with its own SQLite file, tokens bootstrapped
// with `pendulum-server token create`, stopped with SIGTERM or killed with
// SIGKILL. The destructor kills and reaps a process still running.
// Header-only; use from the test thread.
//
//   ServerProcess server(dir / "pendulum.db");
//   std::string admin = ServerProcess::CreateToken(db, "root", "admin");  // before or after Start
//   ASSERT_TRUE(server.Start()) << server.failure();
//   ... server.address() ...
//   server.Kill(); ASSERT_TRUE(server.Start());   // same DB, new port

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/child_command.h"
#include "tests/support/test_paths.h"

namespace pendulum::testing {

// $PENDULUM_SERVER_BINARY, else <build>/server/pendulum-server.
inline std::filesystem::path ServerBinary() {
  const char* env = std::getenv("PENDULUM_SERVER_BINARY");
  if (env && *env) return env;
  return BinaryDir() / "server" / "pendulum-server";
}

// $PENDULUM_CLI_BINARY, else <build>/client/pendulum.
inline std::filesystem::path CliBinary() {
  const char* env = std::getenv("PENDULUM_CLI_BINARY");
  if (env && *env) return env;
  return BinaryDir() / "client" / "pendulum";
}

class ServerProcess {
 public:
  explicit ServerProcess(std::filesystem::path db, std::vector<std::string> extra_args = {})
      : db_(std::move(db)), extra_args_(std::move(extra_args)) {}
  ~ServerProcess() { Kill(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Runs `pendulum-server token create`; returns the token ("" on failure,
  // with the reason in *error when given).
  static std::string CreateToken(const std::filesystem::path& db, const std::string& user, const std::string& role,
                                 std::string* error = nullptr) {
    CommandResult r = RunChildCommand(
        {ServerBinary().string(), "token", "create", "--db", db.string(), "--user", user, "--role", role});
    std::string token = r.out;
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (r.exit_code != 0 || token.empty() || token.find('\n') != std::string::npos) {
      if (error) *error = "token create exited " + std::to_string(r.exit_code) + ": " + r.err;
      return "";
    }
    return token;
  }

  // Starts the server and waits (up to `timeout`) for its listening line.
  bool Start(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    Kill();
    failure_.clear();
    if (!std::filesystem::exists(ServerBinary())) {
      failure_ = "pendulum-server binary not found at " + ServerBinary().string() +
                 " (build target pendulum-server, or set PENDULUM_SERVER_BINARY)";
      return false;
    }
    const auto dir = db_.parent_path();
    stdout_path_ = dir / ("server-" + std::to_string(++starts_) + ".out");
    stderr_path_ = dir / ("server-" + std::to_string(starts_) + ".err");
    std::vector<std::string> argv = {ServerBinary().string(), "--db", db_.string(), "--listen", "127.0.0.1:0",
                                     "--artifacts", (dir / "artifacts").string()};
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    pid_ = SpawnChild(argv, {}, stdout_path_.string(), stderr_path_.string());
    if (pid_ < 0) {
      failure_ = "fork failed";
      return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const std::string marker = "listening on ";
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string out = ReadWholeFile(stdout_path_);
      if (size_t at = out.find(marker); at != std::string::npos) {
        size_t end = out.find('\n', at);
        if (end != std::string::npos) {
          address_ = out.substr(at + marker.size(), end - at - marker.size());
          return true;
        }
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        failure_ = "pendulum-server exited before listening; stderr:\n" + ReadWholeFile(stderr_path_);
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    failure_ = "pendulum-server printed no 'listening on' line in time; stderr:\n" + ReadWholeFile(stderr_path_);
    Kill();
    return false;
  }

  // SIGTERM, then SIGKILL after `grace`. Returns the exit code (128+signal if killed).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(10)) {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    bool timed_out = false;
    int code = WaitChild(pid_, grace, &timed_out);
    pid_ = -1;
    return code;
  }

  // SIGKILL and reap (a crash, as far as the server can tell).
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  bool running() const { return pid_ > 0; }
  const std::string& address() const { return address_; }
  const std::string& failure() const { return failure_; }
  const std::filesystem::path& db() const { return db_; }
  std::string stderr_text() const { return ReadWholeFile(stderr_path_); }

 private:
  std::filesystem::path db_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
  int starts_ = 0;
  std::string address_;
  std::string failure_;
  std::filesystem::path stdout_path_, stderr_path_;
};

}  // namespace pendulum::testing
