// pipeline_emitter: a trainer that emits metric events as fast as it can,
// obeying docs/trainer_protocol.md (command line, numbered events, Started
// first, Finished last with points_emitted) but doing no training and linking
// no LibTorch. The worker runs it instead of pendulum-train (--trainer), so
// the benchmark measures the pipeline: pipe -> spool -> gRPC -> SQLite.
//
// How much to emit comes from the run's spec tags (the spec is what the worker
// hands every trainer): bench_events (Scalars events, default 1000) and
// bench_values (values per event, default 4).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "pendulum/v1/events.pb.h"
#include "pendulum/v1/run_spec.pb.h"
#include "proto/io/event_stream.h"

namespace {

bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string spec_path;
  int fd = -1;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--spec") == 0) spec_path = argv[i + 1];
    if (std::strcmp(argv[i], "--events-fd") == 0) fd = std::atoi(argv[i + 1]);
  }
  if (spec_path.empty() || fd < 0) {
    std::cerr << "pipeline_emitter: needs --spec FILE.pb and --events-fd N\n";
    return 2;
  }
  pendulum::v1::RunSpec spec;
  std::ifstream in(spec_path, std::ios::binary);
  if (!spec.ParseFromIstream(&in)) {
    std::cerr << "pipeline_emitter: cannot parse " << spec_path << " as a binary RunSpec\n";
    return 2;
  }
  auto tag = [&](const char* key, long fallback) {
    auto it = spec.tags().find(key);
    return it == spec.tags().end() ? fallback : std::atol(it->second.c_str());
  };
  const long events = tag("bench_events", 1000);
  const long values = tag("bench_values", 4);

  uint64_t seq = 0;
  std::string out;
  auto emit = [&](pendulum::v1::TrainerEvent& e, bool flush) {
    e.set_seq(++seq);
    e.set_time_unix_ms(NowMs());
    pendulum::io::AppendDelimited(e, &out);
    if (flush || out.size() >= (64u << 10)) {
      if (!WriteAll(fd, out)) std::_Exit(1);  // the worker is gone
      out.clear();
    }
  };
  pendulum::v1::TrainerEvent started;
  started.mutable_started()->set_pid(::getpid());
  started.mutable_started()->set_total_steps(events);
  started.mutable_started()->set_device("cpu");
  emit(started, true);
  int64_t points = 0;
  pendulum::v1::TrainerEvent e;
  auto* scalars = e.mutable_scalars();
  for (long v = 0; v < values; ++v) (*scalars->mutable_values())["m" + std::to_string(v)] = 0;
  for (long step = 1; step <= events; ++step) {
    scalars->set_step(step);
    for (auto& [name, value] : *scalars->mutable_values()) value = 1.0 / static_cast<double>(step);
    points += values;
    emit(e, false);
  }
  pendulum::v1::TrainerEvent finished;
  finished.mutable_finished()->set_ok(true);
  finished.mutable_finished()->set_final_step(events);
  finished.mutable_finished()->set_points_emitted(points);
  emit(finished, true);
  return 0;
}
