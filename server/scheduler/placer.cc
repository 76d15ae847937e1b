#include "server/scheduler/placer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace pendulum::scheduler {
namespace {

constexpr double kEps = 1e-9;

bool LabelsMatch(const std::map<std::string, std::string>& want,
                 const std::map<std::string, std::string>& have) {
  for (const auto& [key, value] : want) {
    auto it = have.find(key);
    if (it == have.end() || it->second != value) return false;
  }
  return true;
}

bool MemoryMatches(const ResourceRequest& r, const WorkerCapacity& w) {
  return r.uses_slot() || r.gpu_memory_mb == 0 || w.gpu_memory_mb == 0 ||
         w.gpu_memory_mb >= r.gpu_memory_mb;
}

std::string Plural(uint32_t n, const char* one, const char* many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// "4" for whole numbers, "0.25" otherwise.
std::string Num(double v) {
  if (std::fabs(v - std::round(v)) < 1e-6) return absl::StrCat(static_cast<int64_t>(std::round(v)));
  return absl::StrFormat("%.3g", v);
}

std::string LabelText(const std::map<std::string, std::string>& labels) {
  return absl::StrCat(labels.size() == 1 ? "label " : "labels ",
                      absl::StrJoin(labels, ", ", absl::PairFormatter("=")));
}

std::string Need(const ResourceRequest& r) {
  if (r.uses_slot()) return "needs a CPU slot";
  if (r.gpus > 0) return absl::StrCat("needs ", Plural(r.gpus, "GPU", "GPUs"));
  return absl::StrCat("needs ", Num(r.gpu_fraction), " of a GPU");
}

// Key of everything that decides which workers a request can use at all.
std::string EligibilityKey(const ResourceRequest& r) {
  return absl::StrCat(r.uses_slot() ? "s" : "g", "|", r.gpu_memory_mb, "|",
                      absl::StrJoin(r.node_labels, ",", absl::PairFormatter("=")));
}

std::string ShapeKey(const ResourceRequest& r) {
  return absl::StrCat(r.gpus, "|", r.gpu_fraction, "|", EligibilityKey(r));
}

// Could the worker ever hold the request (all its capacity free)?
bool CouldEverFit(const ResourceRequest& r, const WorkerCapacity& w) {
  if (r.uses_slot()) return w.total_slots >= 1;
  if (r.gpus > 0) return w.total_gpus >= r.gpus;
  return w.total_gpus >= 1;
}

// A candidate placement of one request on one worker.
struct Fit {
  bool ok = false;
  double leftover = 0;                // smaller is a better fit
  std::vector<uint32_t> gpu_indices;
};

Fit FitOn(const ResourceRequest& r, const WorkerCapacity& w) {
  Fit fit;
  if (r.uses_slot()) {
    if (w.free_slots >= 1) {
      fit.ok = true;
      fit.leftover = w.free_slots - 1;
    }
    return fit;
  }
  if (r.gpus > 0) {
    if (w.free_gpu_indices.size() >= r.gpus) {
      fit.ok = true;
      fit.leftover = w.free_gpu_indices.size() - r.gpus;
      fit.gpu_indices.assign(w.free_gpu_indices.begin(), w.free_gpu_indices.begin() + r.gpus);
    }
    return fit;
  }
  // Fractional: pack onto the fullest shared GPU it fits on, so whole GPUs stay
  // free for gang runs; open a free GPU only when no shared one has room.
  double best_left = std::numeric_limits<double>::max();
  for (const auto& [index, used] : w.shared_gpus) {
    double left = 1.0 - used - r.gpu_fraction;
    if (left >= -kEps && left < best_left - kEps) {
      best_left = std::max(0.0, left);
      fit.gpu_indices = {index};
    }
  }
  if (!fit.gpu_indices.empty()) {
    fit.ok = true;
    fit.leftover = best_left;
  } else if (!w.free_gpu_indices.empty()) {
    fit.ok = true;
    fit.leftover = 1.0 + (w.free_gpu_indices.size() - 1);
    fit.gpu_indices = {w.free_gpu_indices.front()};
  }
  return fit;
}

void Take(const ResourceRequest& r, const Fit& fit, WorkerCapacity& w) {
  if (r.uses_slot()) {
    --w.free_slots;
    return;
  }
  if (r.gpus == 0) {
    const uint32_t g = fit.gpu_indices.front();
    auto it = w.shared_gpus.find(g);
    if (it != w.shared_gpus.end()) {
      it->second += r.gpu_fraction;
      return;
    }
    w.shared_gpus[g] = r.gpu_fraction;
  }
  for (uint32_t g : fit.gpu_indices) {
    auto it = std::lower_bound(w.free_gpu_indices.begin(), w.free_gpu_indices.end(), g);
    if (it != w.free_gpu_indices.end() && *it == g) w.free_gpu_indices.erase(it);
  }
}

// Gives a running run's resources back to a capacity copy.
void Give(const RunningRun& run, WorkerCapacity& w) {
  auto free_gpu = [&w](uint32_t g) {
    auto it = std::lower_bound(w.free_gpu_indices.begin(), w.free_gpu_indices.end(), g);
    if (it == w.free_gpu_indices.end() || *it != g) w.free_gpu_indices.insert(it, g);
  };
  if (run.request.uses_slot()) {
    ++w.free_slots;
    return;
  }
  if (run.request.gpus == 0) {
    for (uint32_t g : run.gpu_indices) {
      auto it = w.shared_gpus.find(g);
      if (it == w.shared_gpus.end()) continue;
      it->second -= run.request.gpu_fraction;
      if (it->second <= kEps) {
        w.shared_gpus.erase(it);
        free_gpu(g);
      }
    }
    return;
  }
  for (uint32_t g : run.gpu_indices) free_gpu(g);
}

// The same resources freed by victims: slot runs free slots, GPU runs free GPUs.
bool HoldsWhatIsNeeded(const ResourceRequest& want, const RunningRun& run) {
  return want.uses_slot() == run.request.uses_slot();
}

// Why `r` fits no worker's free capacity. `pool` is already reduced by this
// pass's placements.
std::string CapacityReason(const ResourceRequest& r, const std::vector<WorkerCapacity>& pool) {
  if (pool.empty()) return "no worker online";
  bool any_schedulable = false;
  bool any_labelled = false, labelled_schedulable = false, labelled_draining = false;
  for (const auto& w : pool) {
    any_schedulable = any_schedulable || w.schedulable;
    if (!LabelsMatch(r.node_labels, w.labels)) continue;
    any_labelled = true;
    labelled_schedulable = labelled_schedulable || w.schedulable;
    labelled_draining = labelled_draining || w.draining;
  }
  if (!any_schedulable) {
    bool all_draining = std::all_of(pool.begin(), pool.end(), [](const WorkerCapacity& w) { return w.draining; });
    auto held = std::find_if(pool.begin(), pool.end(), [](const WorkerCapacity& w) { return !w.held_back.empty(); });
    if (held != pool.end()) {
      return absl::StrCat("no worker online (others draining or disconnected; worker '", held->worker_id,
                          "' is held back: ", held->held_back, ")");
    }
    return all_draining ? "no worker online (all workers are draining)"
                        : "no worker online (all workers draining or disconnected)";
  }
  if (!any_labelled) return absl::StrCat("no worker has ", LabelText(r.node_labels));
  if (!labelled_schedulable) {
    return absl::StrCat("every worker with ", LabelText(r.node_labels), " is ",
                        labelled_draining ? "draining" : "offline");
  }
  std::vector<const WorkerCapacity*> matching;
  uint64_t largest_memory = 0;
  bool memory_unknown = false;
  for (const auto& w : pool) {
    if (!w.schedulable || !LabelsMatch(r.node_labels, w.labels)) continue;
    if (!r.uses_slot() && w.total_gpus > 0) {
      largest_memory = std::max(largest_memory, w.gpu_memory_mb);
      memory_unknown = memory_unknown || w.gpu_memory_mb == 0;
    }
    if (MemoryMatches(r, w)) matching.push_back(&w);
  }
  if (matching.empty() || (!r.uses_slot() && !memory_unknown && largest_memory < r.gpu_memory_mb &&
                           largest_memory > 0)) {
    return absl::StrCat(Need(r), " with ", r.gpu_memory_mb, " MiB, largest online GPU has ",
                        largest_memory, " MiB");
  }
  if (r.uses_slot()) {
    uint32_t total = 0;
    for (const auto* w : matching) total += w->total_slots;
    if (total == 0) return "needs a CPU slot, no online worker has CPU slots";
    return absl::StrCat("needs a CPU slot, all ", Plural(total, "slot is", "slots are"), " busy");
  }
  uint32_t largest_total = 0;
  uint32_t largest_free = 0;
  double most_free_share = 0;
  for (const auto* w : matching) {
    largest_total = std::max(largest_total, w->total_gpus);
    largest_free = std::max<uint32_t>(largest_free, w->free_gpu_indices.size());
    for (const auto& [index, used] : w->shared_gpus) most_free_share = std::max(most_free_share, 1.0 - used);
  }
  if (largest_total == 0) return absl::StrCat(Need(r), ", no online worker has a GPU");
  if (largest_total < r.gpus) {
    return absl::StrCat(Need(r), ", no online worker has more than ", largest_total);
  }
  if (r.gpus == 0) {
    return absl::StrCat(Need(r), ", every GPU is taken (most free share on a shared GPU: ",
                        Num(std::max(0.0, most_free_share)), ")");
  }
  return absl::StrCat(Need(r), ", largest free block is ", largest_free);
}

// Per-pass state of the placer.
class Pass {
 public:
  Pass(const PoolSnapshot& snapshot, const PlacerOptions& options)
      : snapshot_(snapshot), options_(options), pool_(snapshot.workers) {
    std::sort(pool_.begin(), pool_.end(),
              [](const WorkerCapacity& a, const WorkerCapacity& b) { return a.worker_id < b.worker_id; });
    reserved_for_.assign(pool_.size(), nullptr);
    promised_worker_.assign(pool_.size(), false);
    for (auto& w : pool_) {
      std::sort(w.free_gpu_indices.begin(), w.free_gpu_indices.end());
      for (const auto& run : w.running) {
        User(run.owner).in_use += run.request.gpu_equivalent();
        if (run.preemptible && !run.stopping) {
          lowest_preemptible_ = std::min(lowest_preemptible_, run.priority);
        }
      }
    }
  }

  PlacementPlan Run() {
    // Priority classes, highest first; within one, each user's runs FIFO.
    std::map<int32_t, std::map<std::string, std::vector<const QueuedRun*>>, std::greater<int32_t>> classes;
    for (const auto& run : snapshot_.queue) classes[run.priority][run.owner].push_back(&run);
    for (auto& [priority, users] : classes) {
      // Fair share: the user with the least recent GPU-time (plus what this
      // pass already gave them) goes next; ties by user name.
      std::set<std::pair<double, std::string>> turn;
      std::map<std::string, size_t> cursor;
      for (auto& [user, runs] : users) {
        std::sort(runs.begin(), runs.end(), [](const QueuedRun* a, const QueuedRun* b) {
          if (a->submit_unix_ms != b->submit_unix_ms) return a->submit_unix_ms < b->submit_unix_ms;
          return a->run_id < b->run_id;
        });
        turn.emplace(Usage(user), user);
        cursor[user] = 0;
      }
      while (!turn.empty()) {
        auto [usage, user] = *turn.begin();
        turn.erase(turn.begin());
        const std::vector<const QueuedRun*>& runs = users[user];
        size_t& next = cursor[user];
        const QueuedRun* run = runs[next++];
        if (Consider(*run, User(user))) {
          const double units = run->request.uses_slot() ? 1.0 : run->request.gpu_equivalent();
          usage += units * options_.placement_charge_gpu_seconds;
        }
        if (next < runs.size()) turn.emplace(usage, user);
      }
    }
    ExplainBlocked();
    // Reasons were collected in decision order; building the map from sorted
    // keys with an end hint is linear instead of ~100k random tree inserts.
    std::stable_sort(reasons_.begin(), reasons_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [run_id, reason] : reasons_) {
      auto hint = plan_.queue_reasons.end();
      if (!plan_.queue_reasons.empty() && std::prev(hint)->first == run_id) {
        std::prev(hint)->second = std::move(reason);  // the later reason wins
      } else {
        plan_.queue_reasons.emplace_hint(hint, run_id, std::move(reason));
      }
    }
    return std::move(plan_);
  }

 private:
  struct Memo {
    bool computed = false;
    bool behind = false;        // fits a reserved worker's free capacity
    size_t behind_worker = 0;
    std::string capacity_reason;
  };

  void Explain(int64_t run_id, std::string reason) { reasons_.emplace_back(run_id, std::move(reason)); }

  // Worker i is reserved for another waiting run: one of higher priority
  // than `run`, or any run whose victims are stopping there (what they free,
  // and what is free there now, is promised to it).
  bool BlockedBy(size_t i, const QueuedRun& run) const {
    const QueuedRun* holder = reserved_for_[i];
    return holder != nullptr && holder != &run && (promised_worker_[i] || holder->priority > run.priority);
  }

  struct UserState {
    double quota = 0;       // 0 = unlimited
    double usage = 0;       // recent GPU-seconds
    double in_use = 0;      // GPUs held, including this pass's placements
  };
  UserState& User(const std::string& name) {
    auto [it, fresh] = users_.try_emplace(name);
    if (fresh) {
      auto share = snapshot_.users.find(name);
      if (share != snapshot_.users.end()) {
        it->second.quota = share->second.gpu_quota;
        it->second.usage = share->second.recent_gpu_seconds;
      }
    }
    return it->second;
  }
  double Usage(const std::string& user) { return User(user).usage; }

  // Shapes (request + priority) are interned once per run: every per-shape
  // memo below is a vector indexed by the id.
  int ShapeId(const QueuedRun& run) {
    auto [it, fresh] = shape_ids_.try_emplace(absl::StrCat(run.priority, "|", ShapeKey(run.request)),
                                              static_cast<int>(shape_eligible_.size()));
    if (fresh) {
      shape_eligible_.push_back(&Eligible(run.request));
      no_free_fit_.push_back(false);
      memo_.emplace_back();
    }
    return it->second;
  }

  const std::vector<size_t>& Eligible(const ResourceRequest& r) {
    const std::string key = EligibilityKey(r);
    auto it = eligible_.find(key);
    if (it != eligible_.end()) return it->second;
    std::vector<size_t>& out = eligible_[key];
    for (size_t i = 0; i < pool_.size(); ++i) {
      const WorkerCapacity& w = pool_[i];
      if (!LabelsMatch(r.node_labels, w.labels) || !MemoryMatches(r, w)) continue;
      if (r.uses_slot() ? w.total_slots == 0 : w.total_gpus == 0) continue;
      out.push_back(i);
    }
    return out;
  }

  // Places `run` or records why it waits. True when placed.
  bool Consider(const QueuedRun& run, UserState& user) {
    const ResourceRequest& r = run.request;
    const double quota = user.quota;
    const double need = r.gpu_equivalent();
    const double used = user.in_use;
    if (quota > 0 && need > 0 && used + need > quota + kEps) {
      Explain(run.run_id,
          used + kEps >= quota
              ? absl::StrCat("user quota reached (", Num(used), "/", Num(quota), " GPUs)")
              : absl::StrCat("user quota: ", Need(r), ", ", Num(used), " of ", Num(quota),
                             " GPUs in use"));
      return false;
    }
    const int shape = ShapeId(run);
    if (!no_free_fit_[shape]) {
      size_t best = pool_.size();
      Fit best_fit;
      for (size_t i : *shape_eligible_[shape]) {
        const WorkerCapacity& w = pool_[i];
        if (!w.schedulable || BlockedBy(i, run)) continue;
        Fit fit = FitOn(r, w);
        if (fit.ok && (best == pool_.size() || fit.leftover < best_fit.leftover - kEps)) {
          best = i;
          best_fit = std::move(fit);
        }
      }
      if (best < pool_.size()) {
        Take(r, best_fit, pool_[best]);
        user.in_use += need;
        Placement p;
        p.run_id = run.run_id;
        p.worker_id = pool_[best].worker_id;
        p.gpu_indices = std::move(best_fit.gpu_indices);
        p.gpu_fraction = r.gpus == 0 && r.gpu_fraction > 0 ? r.gpu_fraction : 0;
        plan_.placements.push_back(std::move(p));
        return true;
      }
      // Free capacity only shrinks during a pass: the same shape cannot fit later.
      no_free_fit_[shape] = true;
    }
    if (TryPreempt(run, shape)) return false;

    if (reservations_made_ < options_.max_reservations && BehindWorker(run) == pool_.size()) {
      Reserve(run);
    }
    blocked_.emplace_back(&run, shape);
    return false;
  }

  // The reserved worker whose free capacity `run` would fit if a higher
  // priority run had not reserved it; pool_.size() if none.
  size_t BehindWorker(const QueuedRun& run) {
    for (size_t i : Eligible(run.request)) {
      if (pool_[i].schedulable && BlockedBy(i, run) && FitOn(run.request, pool_[i]).ok) return i;
    }
    return pool_.size();
  }

  // Reasons of runs that fit nowhere, from the pool as the pass leaves it
  // (what the user sees until the next pass), computed once per shape.
  void ExplainBlocked() {
    for (const auto& [run, shape] : blocked_) {
      auto behind = behind_.find(run->run_id);
      if (behind != behind_.end()) {
        const QueuedRun* holder = reserved_for_[behind->second];
        Explain(run->run_id,
            absl::StrCat("waiting behind ", holder->priority > run->priority ? "higher priority " : "",
                         "run ", holder->run_id, " (", pool_[behind->second].worker_id,
                         " is reserved for it)"));
        continue;
      }
      Memo& memo = memo_[shape];
      if (!memo.computed) {
        memo.computed = true;
        memo.behind_worker = BehindWorker(*run);
        memo.behind = memo.behind_worker < pool_.size();
        if (!memo.behind) memo.capacity_reason = CapacityReason(run->request, pool_);
      }
      if (memo.behind) {
        const QueuedRun* holder = reserved_for_[memo.behind_worker];
        Explain(run->run_id,
            absl::StrCat("waiting behind ", holder->priority > run->priority ? "higher priority " : "",
                         "run ", holder->run_id, " (",
                         pool_[memo.behind_worker].worker_id, " is reserved for it)"));
      } else {
        Explain(run->run_id, memo.capacity_reason);
      }
    }
  }

  // A blocked run reserves the worker where it would fit soonest (the most
  // free capacity among those that could ever hold it), so later, smaller
  // runs do not keep taking what it needs.
  void Reserve(const QueuedRun& run) {
    if (reservations_made_ >= options_.max_reservations) return;
    const ResourceRequest& r = run.request;
    size_t best = pool_.size();
    double best_free = -1;
    for (size_t i : Eligible(r)) {
      const WorkerCapacity& w = pool_[i];
      if (!w.schedulable || reserved_for_[i] != nullptr || !CouldEverFit(r, w)) continue;
      double free = r.uses_slot() ? w.free_slots : static_cast<double>(w.free_gpu_indices.size());
      if (free > best_free + kEps) {
        best = i;
        best_free = free;
      }
    }
    if (best == pool_.size()) return;
    reserved_for_[best] = &run;
    ++reservations_made_;
  }

  // Preempts lower-priority runs on one worker so `run` fits there once they
  // stop, or notices it is already waiting for runs preempted for it. True
  // when `run` now waits on a worker reserved for it.
  bool TryPreempt(const QueuedRun& run, int shape) {
    if (!options_.preemption) return false;
    const ResourceRequest& r = run.request;
    const bool may_preempt = run.priority > lowest_preemptible_ &&
                             preempting_runs_ < options_.max_preempting_runs &&
                             no_victims_.count(shape) == 0;
    const bool promised = AnyPromised(run.run_id);
    if (!may_preempt && !promised) {
      auto it = no_victims_.find(shape);
      if (it != no_victims_.end() && it->second < pool_.size()) behind_[run.run_id] = it->second;
      return false;
    }
    size_t skipped = pool_.size();  // first worker passed over as promised to another run

    size_t best = pool_.size();
    std::vector<RunningRun*> best_victims;
    std::vector<int64_t> best_waiting;
    for (size_t i : Eligible(r)) {
      WorkerCapacity& w = pool_[i];
      if (!w.schedulable || !CouldEverFit(r, w)) continue;
      if (BlockedBy(i, run)) {
        if (skipped == pool_.size() && may_preempt && CouldPreemptFor(run, w)) skipped = i;
        continue;
      }
      WorkerCapacity freed;
      freed.free_slots = w.free_slots;
      freed.free_gpu_indices = w.free_gpu_indices;
      freed.shared_gpus = w.shared_gpus;
      std::vector<int64_t> waiting;
      for (const auto& other : w.running) {
        if (other.stopping && other.stopping_for == run.run_id) {
          Give(other, freed);
          waiting.push_back(other.run_id);
        }
      }
      std::vector<RunningRun*> victims;
      if (!FitOn(r, freed).ok) {
        if (!may_preempt) continue;
        std::vector<RunningRun*> candidates;
        for (auto& other : w.running) {
          if (other.preemptible && !other.stopping && other.priority < run.priority &&
              HoldsWhatIsNeeded(r, other)) {
            candidates.push_back(&other);
          }
        }
        // Lowest priority first; among equals the newest run (least work lost).
        std::sort(candidates.begin(), candidates.end(), [](const RunningRun* a, const RunningRun* b) {
          if (a->priority != b->priority) return a->priority < b->priority;
          return a->run_id > b->run_id;
        });
        bool fits = false;
        for (RunningRun* c : candidates) {
          Give(*c, freed);
          victims.push_back(c);
          if (FitOn(r, freed).ok) {
            fits = true;
            break;
          }
        }
        if (!fits) continue;
        // Drop victims that turned out unnecessary (an early pick may not
        // have freed what was needed).
        for (size_t k = 0; k + 1 < victims.size();) {
          WorkerCapacity trial;
          trial.free_slots = w.free_slots;
          trial.free_gpu_indices = w.free_gpu_indices;
          trial.shared_gpus = w.shared_gpus;
          for (const auto& other : w.running) {
            if (other.stopping && other.stopping_for == run.run_id) Give(other, trial);
          }
          for (size_t j = 0; j < victims.size(); ++j) {
            if (j != k) Give(*victims[j], trial);
          }
          if (FitOn(r, trial).ok) {
            victims.erase(victims.begin() + k);
          } else {
            ++k;
          }
        }
      }
      if (best == pool_.size() || victims.size() < best_victims.size()) {
        best = i;
        best_victims = std::move(victims);
        best_waiting = std::move(waiting);
        if (best_victims.empty()) break;  // nothing more to stop: cannot do better
      }
    }
    if (best == pool_.size()) {
      if (may_preempt) no_victims_[shape] = skipped;
      if (skipped < pool_.size()) behind_[run.run_id] = skipped;
      return false;
    }
    WorkerCapacity& w = pool_[best];
    std::vector<int64_t> stopped = best_waiting;
    for (RunningRun* v : best_victims) {
      v->stopping = true;
      v->preemptible = false;
      v->stopping_for = run.run_id;
      Preemption p;
      p.run_id = v->run_id;
      p.worker_id = w.worker_id;
      p.for_run_id = run.run_id;
      p.reason = absl::StrCat(kPreemptedReasonPrefix, run.run_id, " (priority ", run.priority, " > ",
                              v->priority, ")");
      plan_.preemptions.push_back(std::move(p));
      stopped.push_back(v->run_id);
    }
    if (!best_victims.empty()) ++preempting_runs_;
    if (reserved_for_[best] == nullptr) ++reservations_made_;
    reserved_for_[best] = &run;
    promised_worker_[best] = true;
    Explain(run.run_id, absl::StrCat(
        best_victims.empty() ? "waiting for preempted " : "preempting lower priority ",
        stopped.size() == 1 ? "run " : "runs ", absl::StrJoin(stopped, ", "), " on ", w.worker_id,
        " to checkpoint and stop"));
    return true;
  }

  // Some running run on `w` has lower priority than `run` and could be stopped.
  static bool CouldPreemptFor(const QueuedRun& run, const WorkerCapacity& w) {
    for (const auto& other : w.running) {
      if (other.preemptible && !other.stopping && other.priority < run.priority &&
          HoldsWhatIsNeeded(run.request, other)) {
        return true;
      }
    }
    return false;
  }

  bool AnyPromised(int64_t run_id) {
    if (!promised_scanned_) {
      promised_scanned_ = true;
      for (const auto& w : pool_) {
        for (const auto& r : w.running) {
          if (r.stopping) promised_to_.insert(r.stopping_for);
        }
      }
    }
    return promised_to_.count(run_id) > 0;
  }

  const PoolSnapshot& snapshot_;
  const PlacerOptions& options_;
  std::vector<WorkerCapacity> pool_;               // sorted by id; shrinks as runs are placed
  std::vector<const QueuedRun*> reserved_for_;     // per pool_ index
  std::vector<bool> promised_worker_;              // reserved by a preempting run
  int reservations_made_ = 0;
  int preempting_runs_ = 0;
  int32_t lowest_preemptible_ = std::numeric_limits<int32_t>::max();
  std::unordered_map<std::string, UserState> users_;
  std::unordered_map<std::string, int> shape_ids_;
  std::vector<const std::vector<size_t>*> shape_eligible_;  // per shape id
  std::unordered_map<std::string, std::vector<size_t>> eligible_;
  std::vector<bool> no_free_fit_;                  // per shape id: fits nowhere free
  // Shapes (with priority) that found no victims; value: a worker that had
  // some but was reserved for another run, or pool_.size().
  std::unordered_map<int, size_t> no_victims_;
  std::map<int64_t, size_t> behind_;               // run → reserved worker it waits for
  std::vector<Memo> memo_;                         // per shape id
  std::vector<std::pair<const QueuedRun*, int>> blocked_;
  bool promised_scanned_ = false;
  std::set<int64_t> promised_to_;
  std::vector<std::pair<int64_t, std::string>> reasons_;
  PlacementPlan plan_;
};

}  // namespace

PlacementPlan Placer::Place(const PoolSnapshot& snapshot, const PlacerOptions& options) {
  Pass pass(snapshot, options);
  return pass.Run();
}

}  // namespace pendulum::scheduler
