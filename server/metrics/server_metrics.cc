#include "server/metrics/server_metrics.h"

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
      ingest_queue_(GaugeFamily(*registry_, "pendulum_ingest_queue_events",
                                "Trainer events queued for the writer thread")
                        .Add({})),
      run_loss_(GaugeFamily(*registry_, "pendulum_run_loss", "Latest loss of each running run")) {}

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
  if (n > 0) ingested_points_.Increment(static_cast<double>(n));
}

void ServerMetrics::SetIngestQueueEvents(int64_t n) { ingest_queue_.Set(static_cast<double>(n)); }

void ServerMetrics::SetRunLoss(int64_t run_id, const std::string& user, double loss) {
  absl::MutexLock lock(&mu_);
  auto it = run_loss_gauges_.find(run_id);
  if (it == run_loss_gauges_.end()) {
    it = run_loss_gauges_
             .emplace(run_id, &run_loss_.Add({{"run_id", std::to_string(run_id)}, {"user", user}}))
             .first;
  }
  it->second->Set(loss);
}

void ServerMetrics::RemoveRun(int64_t run_id) {
  absl::MutexLock lock(&mu_);
  auto it = run_loss_gauges_.find(run_id);
  if (it == run_loss_gauges_.end()) return;
  run_loss_.Remove(it->second);
  run_loss_gauges_.erase(it);
}

}  // namespace pendulum::metrics
