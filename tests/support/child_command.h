#pragma once
// Runs a binary to completion with extra environment variables and optional
// stdin text, capturing exit code, stdout and stderr (through files in a temp
// dir, so large outputs cannot deadlock a pipe). For integration tests that
// drive the real CLI / server binaries. Header-only; call from one thread.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace pendulum::testing {

struct CommandResult {
  int exit_code = -1;  // 128+signal when killed; -1 when it could not start
  std::string out;
  std::string err;
  bool timed_out = false;
};

inline std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts `argv` with stdout/stderr redirected to the given files (empty = /dev/null)
// and the variables in `env` set (a value of "\x01" unsets it). Returns the pid, or -1.
inline pid_t SpawnChild(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                        const std::string& stdout_path, const std::string& stderr_path,
                        const std::string& stdin_path = "") {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = fork();
  if (pid != 0) return pid;
  // Child: only async-signal-safe-ish calls from here to exec.
  for (const auto& [k, v] : env) {
    if (v == "\x01") {
      unsetenv(k.c_str());
    } else {
      setenv(k.c_str(), v.c_str(), 1);
    }
  }
  auto redirect = [](const std::string& path, int fd, int flags) {
    int f = open(path.empty() ? "/dev/null" : path.c_str(), flags, 0644);
    if (f >= 0) {
      dup2(f, fd);
      close(f);
    }
  };
  redirect(stdin_path, 0, O_RDONLY);
  redirect(stdout_path, 1, O_WRONLY | O_CREAT | O_TRUNC);
  redirect(stderr_path, 2, O_WRONLY | O_CREAT | O_TRUNC);
  execv(cargv[0], cargv.data());
  _exit(127);
}

// Waits for `pid` up to `timeout`; kills it (SIGKILL) if it runs longer.
inline int WaitChild(pid_t pid, std::chrono::milliseconds timeout, bool* timed_out) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      if (timed_out) *timed_out = true;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

inline CommandResult RunChildCommand(const std::vector<std::string>& argv,
                                     const std::map<std::string, std::string>& env = {},
                                     const std::string& stdin_text = "",
                                     std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  static int counter = 0;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("pendulum-cmd-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::create_directories(dir);
  const std::string out = (dir / "out").string(), err = (dir / "err").string(), in = (dir / "in").string();
  { std::ofstream(in) << stdin_text; }
  CommandResult result;
  pid_t pid = SpawnChild(argv, env, out, err, in);
  if (pid < 0) return result;
  result.exit_code = WaitChild(pid, timeout, &result.timed_out);
  result.out = ReadWholeFile(out);
  result.err = ReadWholeFile(err);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return result;
}

}  // namespace pendulum::testing
