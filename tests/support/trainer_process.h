#pragma once
// The real pendulum-train binary as a child process, for the tests that run
// it stand-alone (tests/integration/train/trainer_process_test.cc, the
// incremental resume test): where the binary is, its spec file and argument
// list, the events of an events.pb that may still be growing, and a child
// that is SIGKILLed and reaped if the test leaves it running. Header-only;
// use from the test thread. Tests that include it link event_io and
// proto_messages.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "pendulum/v1/run_spec.pb.h"
#include "proto/io/event_stream.h"
#include "tests/support/child_command.h"
#include "tests/support/test_paths.h"

namespace pendulum::testing {

inline std::filesystem::path TrainerBinary() { return BinaryDir() / "worker" / "train" / "pendulum-train"; }

// The complete events of a length-delimited events file. A file still being
// written may end mid-record: the complete ones are kept, the tail ignored.
inline std::vector<v1::TrainerEvent> ReadCompleteEvents(const std::filesystem::path& path) {
  std::vector<v1::TrainerEvent> events;
  size_t consumed = 0;
  io::ParseDelimitedEvents(ReadWholeFile(path), &events, &consumed).IgnoreError();
  return events;
}

// Writes `spec` as <dir>/spec.pb (binary RunSpec, as the worker hands it over).
inline std::filesystem::path WriteSpecFile(const std::filesystem::path& dir, const v1::RunSpec& spec) {
  const std::filesystem::path path = dir / "spec.pb";
  std::ofstream(path, std::ios::binary) << spec.SerializeAsString();
  return path;
}

// pendulum-train --spec SPEC --out OUT --threads THREADS, then `extra`.
inline std::vector<std::string> TrainerArgs(const std::filesystem::path& spec, const std::filesystem::path& out,
                                            int threads, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {TrainerBinary().string(), "--spec", spec.string(),
                                   "--out", out.string(), "--threads", std::to_string(threads)};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// A child with stdin and stdout on /dev/null and stderr to a file; other open
// descriptors are inherited (a test hands the trainer an --events-fd that way).
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& args, const std::filesystem::path& stderr_path)
      : pid_(SpawnChild(args, {}, "", stderr_path.string())) {}
  ~ChildProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Exit code (128+signal when killed), or -1 while it runs.
  int Poll() {
    int status = 0;
    if (!reaped_ && pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return reaped_ ? code_ : -1;
  }
  // Exit code, or -1 when it still runs after timeout_s (it is left running).
  int Wait(double timeout_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Poll() >= 0) return code_;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int code_ = -1;
};

}  // namespace pendulum::testing
