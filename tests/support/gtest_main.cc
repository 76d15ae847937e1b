// main() of every test binary (pendulum_add_test): gtest's, plus a stack
// trace when a test crashes (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL), so a
// crash on a host we visit only briefly (the CUDA build on a lent GPU
// machine) can be diagnosed from one run's log: ctest --output-on-failure
// shows it. glibc's backtrace() unwinds with the unwind tables, so it works
// without frame pointers (absl's failure handler did not here); the test
// binaries are linked with -rdynamic so the frames carry (mangled) function
// names: pipe the lines through c++filt.
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace {

void WriteStderr(const char* s) {
  ssize_t ignored = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)ignored;
}

// Async-signal-safe enough for a process about to die: write(), backtrace()
// (preloaded in main, so it does not allocate here) and backtrace_symbols_fd().
void OnCrash(int sig) {
  char line[96] = "\n*** test binary crashed: signal ";
  char digits[8];
  int n = 0;
  for (int v = sig; v > 0 && n < 7; v /= 10) digits[n++] = char('0' + v % 10);
  size_t len = std::strlen(line);
  while (n > 0) line[len++] = digits[--n];
  std::strcpy(line + len, "; stack (innermost first):\n");
  WriteStderr(line);
  void* frames[64];
  const int depth = backtrace(frames, 64);
  backtrace_symbols_fd(frames, depth, STDERR_FILENO);
  WriteStderr("*** end of stack\n");
  // SA_RESETHAND restored the default action: re-raise so the exit status
  // (and ctest's "SEGFAULT"/"Subprocess aborted") is what it would have been.
  raise(sig);
}

void InstallCrashStackTrace() {
  void* warm[2];
  backtrace(warm, 2);  // loads libgcc_s now, not inside the handler
  // Own stack for the handler, so a stack overflow still prints.
  static std::vector<char> alt_stack(1 << 16);
  stack_t ss{};
  ss.ss_sp = alt_stack.data();
  ss.ss_size = alt_stack.size();
  sigaltstack(&ss, nullptr);
  struct sigaction sa{};
  sa.sa_handler = OnCrash;
  sa.sa_flags = SA_RESETHAND | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) sigaction(sig, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  InstallCrashStackTrace();
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
