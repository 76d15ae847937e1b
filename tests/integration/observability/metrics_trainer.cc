// metrics_trainer: a protocol-obeying stand-in for pendulum-train (no LibTorch)
// for the observability test. It emits Started, then every 50 ms one Scalars
// event (loss, eval_acc, train_acc, lr) and one OscillationStats event for two
// layers, with fixed values the test can look for in Prometheus:
//   loss 0.75, eval_acc 0.625, train_acc 0.5, lr 0.05,
//   osc_ratio_0.005 of "blocks.0.attn.qkv" 0.25 and of "head" 0.125.
// It runs until SIGTERM (then emits Finished{terminated}, exit 143), so the
// run stays RUNNING while Prometheus scrapes.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iostream>

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
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--events-fd") == 0) g_fd = std::atoi(argv[i + 1]);
  }
  if (g_fd < 0) {
    std::cerr << "metrics_trainer: needs --events-fd\n";
    return 2;
  }
  ::signal(SIGTERM, [](int) { g_term = true; });
  pendulum::v1::TrainerEvent started;
  started.mutable_started()->set_pid(::getpid());
  Emit(started);
  int64_t points = 0;
  for (int64_t step = 1; !g_term; ++step) {
    pendulum::v1::TrainerEvent e;
    e.mutable_scalars()->set_step(step);
    auto& v = *e.mutable_scalars()->mutable_values();
    v["loss"] = 0.75;
    v["eval_acc"] = 0.625;
    v["train_acc"] = 0.5;
    v["lr"] = 0.05;
    points += 4;
    Emit(e);
    pendulum::v1::TrainerEvent osc;
    osc.mutable_oscillation()->set_step(step);
    for (auto [layer, ratio] : {std::pair<const char*, double>{"blocks.0.attn.qkv", 0.25}, {"head", 0.125}}) {
      auto* l = osc.mutable_oscillation()->add_layers();
      l->set_step(step);
      l->set_layer(layer);
      (*l->mutable_values())["osc_ratio_0.005"] = ratio;
      (*l->mutable_values())["flip_rate"] = ratio / 2;
    }
    Emit(osc);
    ::usleep(50000);
  }
  pendulum::v1::TrainerEvent fin;
  fin.mutable_finished()->set_ok(false);
  fin.mutable_finished()->set_message("terminated");
  fin.mutable_finished()->set_points_emitted(points);
  Emit(fin);
  return 143;
}
