// fake_trainer: a protocol-obeying stand-in for pendulum-train (no LibTorch)
// used by the daemon's unit tests. It reads the same command line
// (docs/trainer_protocol.md) and behaves as FAKE_TRAINER_MODE says:
//   ok           emit Started, FAKE_TRAINER_STEPS Scalars (2 values each), Finished{ok}; exit 0
//                (FAKE_TRAINER_STEP_US: sleep this long after each step; SIGTERM stops early;
//                FAKE_TRAINER_ARTIFACT=NAME: before Finished, write OUT/NAME holding
//                FAKE_TRAINER_ARTIFACT_BYTES bytes (default 3000) of byte i = i*31+7
//                and emit ArtifactSaved{kind "analysis", name NAME})
//   exit3        print a data error on stderr, emit Finished{ok=false}; exit 3
//   abort        emit a few events, then abort() (SIGABRT)
//   hang         emit Started, then sleep; on SIGTERM emit Finished{terminated}, exit 143
//   ignore_term  emit Started, ignore SIGTERM, sleep forever
// It always emits a LogLine with its CUDA_VISIBLE_DEVICES right after Started.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "pendulum/v1/events.pb.h"
#include "proto/io/event_stream.h"

namespace {
std::atomic<bool> g_term{false};
int g_fd = -1;
uint64_t g_seq = 0;

void Emit(pendulum::v1::TrainerEvent event) {
  event.set_seq(++g_seq);
  if (!pendulum::io::WriteDelimited(g_fd, event).ok()) std::_Exit(1);
}
}  // namespace

int main(int argc, char** argv) {
  std::string out;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--events-fd") == 0) g_fd = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--out") == 0) out = argv[i + 1];
  }
  if (g_fd < 0 || out.empty()) {
    std::cerr << "fake_trainer: needs --events-fd and --out\n";
    return 2;
  }
  const char* mode_env = std::getenv("FAKE_TRAINER_MODE");
  const std::string mode = mode_env ? mode_env : "ok";
  const int steps = std::getenv("FAKE_TRAINER_STEPS") ? std::atoi(std::getenv("FAKE_TRAINER_STEPS")) : 10;
  const int step_us = std::getenv("FAKE_TRAINER_STEP_US") ? std::atoi(std::getenv("FAKE_TRAINER_STEP_US")) : 0;
  ::signal(SIGTERM, [](int) { g_term = true; });
  if (mode == "ignore_term") ::signal(SIGTERM, SIG_IGN);

  pendulum::v1::TrainerEvent started;
  started.mutable_started()->set_pid(::getpid());
  started.mutable_started()->set_total_steps(steps);
  Emit(started);
  pendulum::v1::TrainerEvent log;
  const char* cvd = std::getenv("CUDA_VISIBLE_DEVICES");
  log.mutable_log()->set_level("info");
  log.mutable_log()->set_text(std::string("CUDA_VISIBLE_DEVICES=") + (cvd ? cvd : "<unset>"));
  Emit(log);

  int64_t points = 0;
  if (mode == "ok" || mode == "abort") {
    const int n = mode == "abort" ? 3 : steps;
    for (int s = 1; s <= n; ++s) {
      pendulum::v1::TrainerEvent e;
      e.mutable_scalars()->set_step(s);
      (*e.mutable_scalars()->mutable_values())["loss"] = 1.0 / s;
      (*e.mutable_scalars()->mutable_values())["acc"] = 0.01 * s;
      points += 2;
      Emit(e);
      if (step_us > 0) ::usleep(static_cast<useconds_t>(step_us));
      if (g_term) {
        pendulum::v1::TrainerEvent fin;
        fin.mutable_finished()->set_ok(false);
        fin.mutable_finished()->set_message("terminated");
        fin.mutable_finished()->set_points_emitted(points);
        Emit(fin);
        return 143;
      }
    }
    if (mode == "abort") {
      std::cerr << "fake_trainer: deliberate abort\n";
      std::abort();
    }
    if (const char* name = std::getenv("FAKE_TRAINER_ARTIFACT")) {
      const char* size_env = std::getenv("FAKE_TRAINER_ARTIFACT_BYTES");
      const long size = size_env ? std::atol(size_env) : 3000;
      const std::filesystem::path path = std::filesystem::path(out) / name;
      std::filesystem::create_directories(path.parent_path());
      std::ofstream file(path, std::ios::binary);
      for (long i = 0; i < size; ++i) file.put(static_cast<char>(i * 31 + 7));
      file.close();
      pendulum::v1::TrainerEvent e;
      e.mutable_artifact()->set_step(steps);
      e.mutable_artifact()->set_name(name);
      e.mutable_artifact()->set_path(name);  // relative to the out dir
      e.mutable_artifact()->set_bytes(size);
      e.mutable_artifact()->set_kind("analysis");
      Emit(e);
    }
    pendulum::v1::TrainerEvent fin;
    fin.mutable_finished()->set_ok(true);
    fin.mutable_finished()->set_final_step(steps);
    fin.mutable_finished()->set_points_emitted(points);
    Emit(fin);
    return 0;
  }
  if (mode == "exit3") {
    std::cerr << "fake_trainer: dataset file /nonexistent/data.bin not found\n";
    pendulum::v1::TrainerEvent fin;
    fin.mutable_finished()->set_ok(false);
    fin.mutable_finished()->set_message("data error: /nonexistent/data.bin not found");
    Emit(fin);
    return 3;
  }
  while (!g_term) ::usleep(10000);
  pendulum::v1::TrainerEvent fin;
  fin.mutable_finished()->set_ok(false);
  fin.mutable_finished()->set_message("terminated");
  Emit(fin);
  return 143;
}
