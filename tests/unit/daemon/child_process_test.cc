#include "worker/daemon/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "tests/support/test_paths.h"

namespace pendulum::daemon {
namespace {

ChildOptions Shell(const std::string& script) {
  ChildOptions options;
  options.argv = {"/bin/sh", "-c", script};
  return options;
}

bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

TEST(ChildProcessTest, ReportsExitCode) {
  auto child = ChildProcess::Spawn(Shell("exit 3"));
  ASSERT_TRUE(child.ok()) << child.status();
  const ExitStatus status = (*child)->Wait();
  EXPECT_FALSE(status.signaled);
  EXPECT_EQ(status.code, 3);
  EXPECT_EQ(status.ShellCode(), 3);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.ToString(), "exit code 3");
}

TEST(ChildProcessTest, ReportsKillingSignalAs128PlusN) {
  auto child = ChildProcess::Spawn(Shell("kill -ABRT $$"));
  ASSERT_TRUE(child.ok());
  const ExitStatus status = (*child)->Wait();
  EXPECT_TRUE(status.signaled);
  EXPECT_EQ(status.signal, SIGABRT);
  EXPECT_EQ(status.ShellCode(), 128 + SIGABRT);
  EXPECT_NE(status.ToString().find("signal 6"), std::string::npos) << status.ToString();
}

TEST(ChildProcessTest, MissingProgramIsNotFound) {
  ChildOptions options;
  options.argv = {"/nonexistent/pendulum-train"};
  auto child = ChildProcess::Spawn(options);
  EXPECT_EQ(child.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(child.status().message().find("/nonexistent/pendulum-train"), std::string::npos);
}

TEST(ChildProcessTest, PassesEnvironmentFdsAndRedirectsStderr) {
  const auto dir = testing::MakeTestTempDir();
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  const int high = ::fcntl(fds[1], F_DUPFD_CLOEXEC, 10);
  ::close(fds[1]);
  ChildOptions options = Shell("echo \"gpus=$CUDA_VISIBLE_DEVICES cwd=$(pwd)\" >&3; echo oops >&2");
  options.env_set = {{"CUDA_VISIBLE_DEVICES", "2,5"}};
  options.fd_map = {{high, 3}};
  options.cwd = dir.string();
  options.stderr_path = (dir / "stderr.log").string();
  auto child = ChildProcess::Spawn(options);
  ::close(high);
  ASSERT_TRUE(child.ok());
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  EXPECT_TRUE((*child)->Wait().ok());
  EXPECT_EQ(got, "gpus=2,5 cwd=" + dir.string() + "\n");
  std::ifstream err(dir / "stderr.log");
  std::string line;
  std::getline(err, line);
  EXPECT_EQ(line, "oops");
}

TEST(ChildProcessTest, TerminateStopsAChildThatHonoursSigterm) {
  auto child = ChildProcess::Spawn(Shell("exec sleep 30"));
  ASSERT_TRUE(child.ok());
  const auto start = std::chrono::steady_clock::now();
  const ExitStatus status = (*child)->Terminate(absl::Seconds(10));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(status.signaled);
  EXPECT_EQ(status.signal, SIGTERM);
  EXPECT_EQ(status.ShellCode(), 143);
}

TEST(ChildProcessTest, TerminateEscalatesToSigkillAfterGrace) {
  const auto dir = testing::MakeTestTempDir();
  // Ignores SIGTERM; writes its pid once the trap is in place.
  auto child = ChildProcess::Spawn(
      Shell("trap '' TERM; echo ready > " + (dir / "ready").string() + "; while :; do sleep 0.05; done"));
  ASSERT_TRUE(child.ok());
  for (int i = 0; i < 200 && !std::filesystem::exists(dir / "ready"); ++i) absl::SleepFor(absl::Milliseconds(10));
  const auto start = std::chrono::steady_clock::now();
  const ExitStatus status = (*child)->Terminate(absl::Milliseconds(300));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(290));
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_TRUE(status.signaled);
  EXPECT_EQ(status.signal, SIGKILL);
  EXPECT_EQ(status.ShellCode(), 137);
}

TEST(ChildProcessTest, SignalsReachTheWholeProcessGroup) {
  const auto dir = testing::MakeTestTempDir();
  const std::string pidfile = (dir / "grandchild.pid").string();
  auto child = ChildProcess::Spawn(Shell("sleep 60 & echo $! > " + pidfile + "; wait"));
  ASSERT_TRUE(child.ok());
  pid_t grandchild = 0;
  for (int i = 0; i < 200 && grandchild == 0; ++i) {
    std::ifstream in(pidfile);
    if (!(in >> grandchild)) grandchild = 0;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(Alive(grandchild));
  (*child)->Terminate(absl::Seconds(5));
  // The grandchild was our child's child: it is reaped by init, give it a moment.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !Alive(grandchild);
    if (!gone) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(gone) << "grandchild " << grandchild << " survived the group SIGTERM";
}

TEST(ChildProcessTest, DestructorKillsAndReaps) {
  pid_t pid;
  {
    auto child = ChildProcess::Spawn(Shell("exec sleep 60"));
    ASSERT_TRUE(child.ok());
    pid = (*child)->pid();
    EXPECT_TRUE(Alive(pid));
  }
  // Reaped, so not even a zombie is left.
  EXPECT_FALSE(Alive(pid));
  EXPECT_EQ(errno, ESRCH);
}

TEST(ChildProcessTest, WaitForTimesOutWhileRunning) {
  auto child = ChildProcess::Spawn(Shell("exec sleep 60"));
  ASSERT_TRUE(child.ok());
  EXPECT_FALSE((*child)->WaitFor(absl::Milliseconds(50)).has_value());
  (*child)->SignalGroup(SIGKILL);
  auto status = (*child)->WaitFor(absl::Seconds(5));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->signal, SIGKILL);
}

}  // namespace
}  // namespace pendulum::daemon
