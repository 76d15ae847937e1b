#include "server/metrics/server_metrics.h"

#include <algorithm>
#include <exception>

#include "absl/strings/str_cat.h"

namespace pendulum::metrics {
namespace {

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& r, const std::string& name,
                                                   const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

}  // namespace

ServerMetrics::ServerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      runs_(GaugeFamily(*registry_, "pendulum_runs", "Runs per state")),
      queue_depth_(GaugeFamily(*registry_, "pendulum_queue_depth", "Queued runs per user")),
      user_running_(GaugeFamily(*registry_, "pendulum_user_running_runs",
                                "Active (starting or running) runs per user")),
      user_gpus_(GaugeFamily(*registry_, "pendulum_user_gpus",
                             "GPUs (or CPU slots) held by each user's active runs")),
      workers_(GaugeFamily(*registry_, "pendulum_workers", "Workers per state")),
      gpus_(GaugeFamily(*registry_, "pendulum_gpus", "GPUs of connected workers by state")),
      gpus_busy_(gpus_.Add({{"state", "busy"}})),
      gpus_free_(gpus_.Add({{"state", "free"}})),
      scheduling_latency_(
          prometheus::BuildHistogram()
              .Name("pendulum_scheduling_latency_seconds")
              .Help("Time from a scheduling event (submit, finish, worker change) to its plan applied")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                               0.025, 0.05, 0.1, 0.25, 1.0})),
      ingested_points_(prometheus::BuildCounter()
                           .Name("pendulum_ingested_points_total")
                           .Help("Scalar metric points stored")
                           .Register(*registry_)
                           .Add({})),
      ingested_batches_(prometheus::BuildCounter()
                            .Name("pendulum_ingested_batches_total")
                            .Help("Trainer event batches committed to SQLite")
                            .Register(*registry_)
                            .Add({})),
      ingest_queue_(GaugeFamily(*registry_, "pendulum_ingest_queue_events",
                                "Trainer events queued for the writer thread")
                        .Add({})),
      worker_spool_events_(GaugeFamily(*registry_, "pendulum_spool_lag_events",
                                       "Spool lag: trainer events a worker holds that the server has not acked "
                                       "(last heartbeat)")),
      worker_spool_bytes_(GaugeFamily(*registry_, "pendulum_spool_lag_bytes",
                                      "Bytes of unacked events in a worker's spool (last heartbeat)")),
      run_loss_(GaugeFamily(*registry_, "pendulum_run_loss", "Latest loss of each running run")),
      run_accuracy_(GaugeFamily(*registry_, "pendulum_run_accuracy",
                                "Latest accuracy (0..1) of each running run, split=eval|train")),
      run_lr_(GaugeFamily(*registry_, "pendulum_run_learning_rate", "Latest learning rate of each running run")),
      run_oscillation_(GaugeFamily(*registry_, "pendulum_run_oscillation_ratio",
                                   "Latest fraction of a layer's weights oscillating above the threshold "
                                   "(running runs)")) {}

ServerMetrics::~ServerMetrics() = default;

absl::Status ServerMetrics::StartExposer(const std::string& listen) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(listen);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("--metrics-listen: cannot serve metrics on '", listen, "': ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  return absl::OkStatus();
}

int ServerMetrics::exposer_port() const {
  if (exposer_ == nullptr) return 0;
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void ServerMetrics::SetFamily(prometheus::Family<prometheus::Gauge>& family, const std::string& label,
                              std::map<std::string, prometheus::Gauge*>& seen,
                              const std::map<std::string, int64_t>& values) {
  for (auto& [key, gauge] : seen) gauge->Set(0);
  for (const auto& [key, value] : values) {
    auto it = seen.find(key);
    if (it == seen.end()) it = seen.emplace(key, &family.Add({{label, key}})).first;
    it->second->Set(static_cast<double>(value));
  }
}

void ServerMetrics::SetRunsByState(const std::map<std::string, int64_t>& values) {
  absl::MutexLock lock(&mu_);
  SetFamily(runs_, "state", runs_seen_, values);
}

void ServerMetrics::SetQueueDepthByUser(const std::map<std::string, int64_t>& values) {
  absl::MutexLock lock(&mu_);
  SetFamily(queue_depth_, "user", queue_seen_, values);
}

void ServerMetrics::SetUsageByUser(const std::map<std::string, int64_t>& running_runs,
                                   const std::map<std::string, int64_t>& gpus) {
  absl::MutexLock lock(&mu_);
  SetFamily(user_running_, "user", user_running_seen_, running_runs);
  SetFamily(user_gpus_, "user", user_gpus_seen_, gpus);
}

void ServerMetrics::SetWorkersByState(const std::map<std::string, int64_t>& values) {
  absl::MutexLock lock(&mu_);
  SetFamily(workers_, "state", workers_seen_, values);
}

void ServerMetrics::SetGpus(int64_t busy, int64_t free) {
  gpus_busy_.Set(static_cast<double>(busy));
  gpus_free_.Set(static_cast<double>(free));
}

void ServerMetrics::ObserveSchedulingLatency(double seconds) { scheduling_latency_.Observe(seconds); }

void ServerMetrics::AddIngestedPoints(int64_t n) {
  ingested_batches_.Increment();
  if (n > 0) ingested_points_.Increment(static_cast<double>(n));
}

void ServerMetrics::SetIngestQueueEvents(int64_t n) { ingest_queue_.Set(static_cast<double>(n)); }

void ServerMetrics::SetWorkerSpool(const std::string& worker_id, uint64_t events, uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  auto it = spool_seen_.find(worker_id);
  if (it == spool_seen_.end()) {
    it = spool_seen_
             .emplace(worker_id, std::make_pair(&worker_spool_events_.Add({{"worker", worker_id}}),
                                                &worker_spool_bytes_.Add({{"worker", worker_id}})))
             .first;
  }
  it->second.first->Set(static_cast<double>(events));
  it->second.second->Set(static_cast<double>(bytes));
}

void ServerMetrics::RemoveWorker(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  auto it = spool_seen_.find(worker_id);
  if (it == spool_seen_.end()) return;
  worker_spool_events_.Remove(it->second.first);
  worker_spool_bytes_.Remove(it->second.second);
  spool_seen_.erase(it);
}

void ServerMetrics::SetRunGauge(int64_t run_id, prometheus::Family<prometheus::Gauge>& family,
                                const std::map<std::string, std::string>& labels, double value) {
  // Family::Add returns the existing gauge for an existing label set.
  prometheus::Gauge* gauge = &family.Add(labels);
  std::vector<RunSeries>& series = run_series_[run_id];
  if (std::none_of(series.begin(), series.end(), [gauge](const RunSeries& s) { return s.gauge == gauge; })) {
    series.push_back({&family, gauge});
  }
  gauge->Set(value);
}

void ServerMetrics::SetRunScalars(int64_t run_id, const std::string& user,
                                  const std::map<std::string, double>& values) {
  const std::string id = std::to_string(run_id);
  absl::MutexLock lock(&mu_);
  for (const auto& [name, value] : values) {
    if (name == "loss") {
      SetRunGauge(run_id, run_loss_, {{"run_id", id}, {"user", user}}, value);
    } else if (name == "accuracy" || name == "eval_acc") {
      SetRunGauge(run_id, run_accuracy_, {{"run_id", id}, {"user", user}, {"split", "eval"}}, value);
    } else if (name == "train_acc") {
      SetRunGauge(run_id, run_accuracy_, {{"run_id", id}, {"user", user}, {"split", "train"}}, value);
    } else if (name == "lr") {
      SetRunGauge(run_id, run_lr_, {{"run_id", id}, {"user", user}}, value);
    }
  }
}

void ServerMetrics::SetRunOscillation(int64_t run_id, const std::string& user, const std::string& layer,
                                      const std::string& threshold, double ratio) {
  absl::MutexLock lock(&mu_);
  SetRunGauge(run_id, run_oscillation_,
              {{"run_id", std::to_string(run_id)}, {"user", user}, {"layer", layer}, {"threshold", threshold}},
              ratio);
}

void ServerMetrics::RemoveRun(int64_t run_id) {
  absl::MutexLock lock(&mu_);
  auto it = run_series_.find(run_id);
  if (it == run_series_.end()) return;
  for (const RunSeries& s : it->second) s.family->Remove(s.gauge);
  run_series_.erase(it);
}

}  // namespace pendulum::metrics
