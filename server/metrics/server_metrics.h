#pragma once
// ServerMetrics: the server's Prometheus series (prometheus-cpp), and the
// optional pull exposer that serves them on --metrics-listen.
//   pendulum_runs{state}                     runs per state (all runs in the DB)
//   pendulum_queue_depth{user}               queued runs per user
//   pendulum_workers{state}                  workers per state
//   pendulum_gpus{state="busy"|"free"}       GPUs of connected workers
//   pendulum_scheduling_latency_seconds      notify → plan applied (histogram)
//   pendulum_ingested_points_total           scalar points stored
//   pendulum_ingest_queue_events             events waiting for the writer
//   pendulum_run_loss{run_id,user}           latest loss of each running run;
//                                            the series is removed when the run ends
// Threads: every method is thread-safe (prometheus-cpp metrics are atomic;
// the per-run map has its own mutex).

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace pendulum::metrics {

class ServerMetrics {
 public:
  ServerMetrics();
  ~ServerMetrics();

  // Starts the HTTP exposer on "host:port" (serving /metrics). Call at most once.
  // INVALID_ARGUMENT / UNAVAILABLE with the address when it cannot bind.
  absl::Status StartExposer(const std::string& listen);

  // Replaces the whole label set of a gauge family: labels absent from `values`
  // are set to 0 (so a state that emptied reads 0, not its last value).
  void SetRunsByState(const std::map<std::string, int64_t>& values);
  void SetQueueDepthByUser(const std::map<std::string, int64_t>& values);
  void SetWorkersByState(const std::map<std::string, int64_t>& values);
  void SetGpus(int64_t busy, int64_t free);
  void ObserveSchedulingLatency(double seconds);
  void AddIngestedPoints(int64_t n);
  void SetIngestQueueEvents(int64_t n);
  void SetRunLoss(int64_t run_id, const std::string& user, double loss);
  void RemoveRun(int64_t run_id);

  prometheus::Registry& registry() { return *registry_; }

 private:
  void SetFamily(prometheus::Family<prometheus::Gauge>& family, const std::string& label,
                 std::map<std::string, prometheus::Gauge*>& seen,
                 const std::map<std::string, int64_t>& values) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>& runs_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& workers_;
  prometheus::Family<prometheus::Gauge>& gpus_;
  prometheus::Gauge& gpus_busy_;
  prometheus::Gauge& gpus_free_;
  prometheus::Histogram& scheduling_latency_;
  prometheus::Counter& ingested_points_;
  prometheus::Gauge& ingest_queue_;
  prometheus::Family<prometheus::Gauge>& run_loss_;
  std::unique_ptr<prometheus::Exposer> exposer_;

  absl::Mutex mu_;
  std::map<std::string, prometheus::Gauge*> runs_seen_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Gauge*> queue_seen_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Gauge*> workers_seen_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, prometheus::Gauge*> run_loss_gauges_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pendulum::metrics
