#include "worker/train/core/signals.h"

#include <csignal>

namespace pendulum::train {
namespace {

volatile std::sig_atomic_t g_checkpoint_requested = 0;
volatile std::sig_atomic_t g_terminate_requested = 0;

extern "C" void OnSignal(int sig) {
  if (sig == SIGUSR1) g_checkpoint_requested = 1;
  if (sig == SIGTERM) g_terminate_requested = 1;
}

}  // namespace

void InstallTrainerSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);
}

bool TakeCheckpointRequest() {
  if (!g_checkpoint_requested) return false;
  g_checkpoint_requested = 0;
  return true;
}

bool TerminationRequested() { return g_terminate_requested != 0; }

}  // namespace pendulum::train
