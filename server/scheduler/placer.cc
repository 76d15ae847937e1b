#include "server/scheduler/placer.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pendulum::scheduler {
namespace {

bool LabelsMatch(const std::map<std::string, std::string>& want,
                 const std::map<std::string, std::string>& have) {
  for (const auto& [key, value] : want) {
    auto it = have.find(key);
    if (it == have.end() || it->second != value) return false;
  }
  return true;
}

std::string Plural(uint32_t n, const char* one, const char* many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// Explains why `run` fits no worker in `workers` (already reduced by the
// placements made earlier in this pass).
std::string QueueReason(const QueuedRun& run, const std::vector<WorkerCapacity>& workers) {
  if (workers.empty()) return "no worker online";
  std::vector<const WorkerCapacity*> usable;
  for (const auto& w : workers) {
    if (w.schedulable) usable.push_back(&w);
  }
  if (usable.empty()) return "no worker online (all workers draining or disconnected)";
  std::vector<const WorkerCapacity*> matching;
  for (const auto* w : usable) {
    if (LabelsMatch(run.node_labels, w->labels)) matching.push_back(w);
  }
  if (matching.empty()) {
    return absl::StrCat(
        "no online worker has labels {",
        absl::StrJoin(run.node_labels, ", ", absl::PairFormatter("=")), "}");
  }
  if (run.gpus == 0) {
    uint32_t total = 0;
    for (const auto* w : matching) total += w->total_slots;
    if (total == 0) return "needs a CPU slot, no online worker has CPU slots";
    return absl::StrCat("needs a CPU slot, all ", Plural(total, "slot is", "slots are"), " busy");
  }
  uint32_t largest_total = 0;
  uint32_t largest_free = 0;
  for (const auto* w : matching) {
    largest_total = std::max(largest_total, w->total_gpus);
    largest_free = std::max<uint32_t>(largest_free, w->free_gpu_indices.size());
  }
  if (largest_total < run.gpus) {
    return absl::StrCat("needs ", Plural(run.gpus, "GPU", "GPUs"),
                        ", no online worker has more than ", largest_total);
  }
  return absl::StrCat("needs ", Plural(run.gpus, "GPU", "GPUs"), ", largest free block is ",
                      largest_free);
}

}  // namespace

PlacementPlan Placer::Place(const PoolSnapshot& snapshot) {
  std::vector<const QueuedRun*> order;
  order.reserve(snapshot.queue.size());
  for (const auto& run : snapshot.queue) order.push_back(&run);
  std::sort(order.begin(), order.end(), [](const QueuedRun* a, const QueuedRun* b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    if (a->submit_unix_ms != b->submit_unix_ms) return a->submit_unix_ms < b->submit_unix_ms;
    return a->run_id < b->run_id;
  });

  // Mutable copy: placements made earlier in the pass consume capacity.
  std::vector<WorkerCapacity> pool = snapshot.workers;
  std::sort(pool.begin(), pool.end(),
            [](const WorkerCapacity& a, const WorkerCapacity& b) { return a.worker_id < b.worker_id; });

  PlacementPlan plan;
  for (const QueuedRun* run : order) {
    WorkerCapacity* best = nullptr;
    uint32_t best_left = std::numeric_limits<uint32_t>::max();
    for (auto& w : pool) {
      if (!w.schedulable || !LabelsMatch(run->node_labels, w.labels)) continue;
      uint32_t free = run->gpus == 0 ? w.free_slots : w.free_gpu_indices.size();
      uint32_t need = run->gpus == 0 ? 1 : run->gpus;
      if (free < need) continue;
      uint32_t left = free - need;
      if (left < best_left) {  // strict: ties keep the lower worker id
        best = &w;
        best_left = left;
      }
    }
    if (best == nullptr) {
      plan.queue_reasons[run->run_id] = QueueReason(*run, pool);
      continue;
    }
    Placement placement;
    placement.run_id = run->run_id;
    placement.worker_id = best->worker_id;
    if (run->gpus == 0) {
      --best->free_slots;
    } else {
      placement.gpu_indices.assign(best->free_gpu_indices.begin(),
                                   best->free_gpu_indices.begin() + run->gpus);
      best->free_gpu_indices.erase(best->free_gpu_indices.begin(),
                                   best->free_gpu_indices.begin() + run->gpus);
    }
    plan.placements.push_back(std::move(placement));
  }
  return plan;
}

}  // namespace pendulum::scheduler
