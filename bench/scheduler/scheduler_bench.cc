// One Placer pass over a simulated pool: 100,000 queued runs and 1,000
// workers (8 GPUs and 4 CPU slots each, ~60% of GPUs busy with running runs
// of mixed priority), 50 users with fair-share history and some quotas, a
// mix of gang, fractional, CPU, labelled and memory-constrained runs. Prints
// JSON: pass time in ms (min / median over repetitions) and what the pass
// decided. Usage: scheduler_bench [--runs N] [--workers N] [--reps N]
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/scheduler/placer.h"

namespace {

using pendulum::scheduler::Placer;
using pendulum::scheduler::PlacementPlan;
using pendulum::scheduler::PoolSnapshot;
using pendulum::scheduler::QueuedRun;
using pendulum::scheduler::RunningRun;
using pendulum::scheduler::WorkerCapacity;

PoolSnapshot MakePool(int num_runs, int num_workers, uint32_t seed) {
  std::mt19937 rng(seed);
  auto uniform = [&rng](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  const int kUsers = 50;
  const int32_t kPriorities[] = {-10, 0, 0, 0, 0, 10, 50};
  PoolSnapshot s;
  int64_t next_id = 1;
  for (int i = 0; i < num_workers; ++i) {
    WorkerCapacity w;
    char id[32];
    std::snprintf(id, sizeof(id), "w%04d", i);
    w.worker_id = id;
    w.total_gpus = 8;
    w.total_slots = 4;
    w.free_slots = 4;
    const bool a100 = i % 10 < 3;
    w.labels = {{"gpu", a100 ? "a100" : "h100"}, {"zone", i % 2 ? "eu" : "us"}};
    w.gpu_memory_mb = a100 ? 40960 : 81920;
    if (i % 97 == 0) {  // a few draining
      w.schedulable = false;
      w.draining = true;
    }
    // ~60% of GPUs busy: whole-GPU runs of 1-2 GPUs, some fractional sharing.
    uint32_t g = 0;
    while (g < 8) {
      const int roll = uniform(10);
      if (roll < 4) {
        w.free_gpu_indices.push_back(g++);
        continue;
      }
      RunningRun r;
      r.run_id = 10000000 + next_id++;
      r.owner = "user" + std::to_string(uniform(kUsers));
      r.priority = kPriorities[uniform(7)];
      if (roll == 9) {
        r.request.gpu_fraction = 0.5;
        r.gpu_indices = {g};
        w.shared_gpus[g] = 0.5;
        ++g;
      } else {
        const uint32_t n = std::min<uint32_t>(8 - g, 1 + uniform(2));
        r.request.gpus = n;
        for (uint32_t k = 0; k < n; ++k) r.gpu_indices.push_back(g++);
      }
      w.running.push_back(std::move(r));
    }
    s.workers.push_back(std::move(w));
  }
  for (int u = 0; u < kUsers; ++u) {
    auto& share = s.users["user" + std::to_string(u)];
    share.recent_gpu_seconds = uniform(100000);
    if (u % 5 == 0) share.gpu_quota = 16;
  }
  for (int i = 0; i < num_runs; ++i) {
    QueuedRun q;
    q.run_id = next_id++;
    q.owner = "user" + std::to_string(uniform(kUsers));
    q.priority = kPriorities[uniform(7)];
    q.submit_unix_ms = 1700000000000LL + i;
    const int shape = uniform(100);
    if (shape < 40) {
      q.request.gpus = 1;
    } else if (shape < 55) {
      q.request.gpus = 2;
    } else if (shape < 65) {
      q.request.gpus = 4;
    } else if (shape < 70) {
      q.request.gpus = 8;
    } else if (shape < 85) {
      q.request.gpu_fraction = shape % 2 ? 0.25 : 0.5;
    }  // else: a CPU slot
    if (uniform(100) < 10) q.request.node_labels = {{"gpu", "a100"}};
    if (uniform(100) < 5) q.request.gpu_memory_mb = 60000;
    s.queue.push_back(std::move(q));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 100000, workers = 1000, reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--workers")) workers = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    else {
      std::cerr << "unknown flag " << argv[i] << "; usage: scheduler_bench [--runs N] [--workers N] [--reps N]\n";
      return 2;
    }
  }
  const PoolSnapshot snapshot = MakePool(runs, workers, 42);
  // Wall time, and CPU time of this thread (the placer is single-threaded;
  // on a shared, loaded machine the CPU time is the steadier number).
  auto cpu_ms = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  };
  std::vector<double> ms, cpu;
  PlacementPlan plan;
  for (int r = 0; r < std::max(1, reps); ++r) {
    const double cpu_start = cpu_ms();
    auto start = std::chrono::steady_clock::now();
    plan = Placer::Place(snapshot);
    auto end = std::chrono::steady_clock::now();
    cpu.push_back(cpu_ms() - cpu_start);
    ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  std::sort(cpu.begin(), cpu.end());
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  size_t free_gpus = 0, running = 0;
  for (const auto& w : snapshot.workers) {
    free_gpus += w.free_gpu_indices.size();
    running += w.running.size();
  }
  nlohmann::json out = {
      {"benchmark", "scheduler_placement_pass"},
      {"queued_runs", runs},
      {"workers", workers},
      {"gpus", workers * 8},
      {"free_gpus_before", free_gpus},
      {"running_runs", running},
      {"repetitions", sorted.size()},
      {"pass_ms_min", sorted.front()},
      {"pass_ms_median", sorted[sorted.size() / 2]},
      {"pass_ms_max", sorted.back()},
      {"pass_cpu_ms_min", cpu.front()},
      {"pass_cpu_ms_median", cpu[cpu.size() / 2]},
      {"placed", plan.placements.size()},
      {"preemptions", plan.preemptions.size()},
      {"queue_reasons", plan.queue_reasons.size()},
  };
  std::cout << out.dump(2) << std::endl;
  return 0;
}
