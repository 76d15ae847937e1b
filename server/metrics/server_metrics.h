#pragma once
// ServerMetrics: the server's Prometheus series (prometheus-cpp), and the
// optional pull exposer that serves them on --metrics-listen.
//   pendulum_runs{state}                       runs per state (all runs in the DB)
//   pendulum_queue_depth{user}                 queued runs per user
//   pendulum_user_running_runs{user}           active (starting/running) runs per user
//   pendulum_user_gpus{user}                   GPUs held by each user's active runs
//   pendulum_workers{state}                    workers per state (ONLINE, DRAINING, ...)
//   pendulum_gpus{state="busy"|"free"}         GPUs of connected workers
//   pendulum_scheduling_latency_seconds        notify → plan applied (histogram)
//   pendulum_ingested_points_total             scalar points stored (rate() = ingestion rate)
//   pendulum_ingested_batches_total            event batches committed
//   pendulum_ingest_queue_events               events waiting for the writer thread
//   pendulum_spool_lag_events{worker}          spool lag: events a worker holds unacked
//   pendulum_spool_lag_bytes{worker}           (from its last heartbeat)
//   pendulum_run_loss{run_id,user}             latest loss of each running run
//   pendulum_run_accuracy{run_id,user,split}   latest accuracy (split = eval|train)
//   pendulum_run_learning_rate{run_id,user}    latest learning rate
//   pendulum_run_oscillation_ratio{run_id,user,layer,threshold}
//                                              latest per-layer oscillation ratio
// Every pendulum_run_* series is removed when its run ends or is requeued.
// Threads: every method is thread-safe (prometheus-cpp metrics are atomic;
// the label maps are guarded by one mutex).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

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

  // Starts the HTTP exposer on "host:port" (serving /metrics); port 0 picks a
  // free port (see exposer_port()). Call at most once. UNAVAILABLE naming the
  // address when it cannot bind.
  absl::Status StartExposer(const std::string& listen);
  // The bound port of the exposer; 0 when it is not running.
  int exposer_port() const;

  // Replaces the whole label set of a gauge family: labels absent from `values`
  // are set to 0 (so a state that emptied reads 0, not its last value).
  void SetRunsByState(const std::map<std::string, int64_t>& values);
  void SetQueueDepthByUser(const std::map<std::string, int64_t>& values);
  void SetUsageByUser(const std::map<std::string, int64_t>& running_runs,
                      const std::map<std::string, int64_t>& gpus);
  void SetWorkersByState(const std::map<std::string, int64_t>& values);
  void SetGpus(int64_t busy, int64_t free);
  void ObserveSchedulingLatency(double seconds);
  void AddIngestedPoints(int64_t n);
  void SetIngestQueueEvents(int64_t n);
  // Spool lag of one worker, from its heartbeat; RemoveWorker drops its series.
  void SetWorkerSpool(const std::string& worker_id, uint64_t events, uint64_t bytes);
  void RemoveWorker(const std::string& worker_id);

  // Latest scalar values of a running run. Recognised names: "loss",
  // "accuracy"/"eval_acc" (split eval), "train_acc" (split train), "lr".
  // Others are ignored (they are in SQLite; Prometheus keeps the few that
  // matter for a live pool view).
  void SetRunScalars(int64_t run_id, const std::string& user, const std::map<std::string, double>& values);
  void SetRunLoss(int64_t run_id, const std::string& user, double loss) {
    SetRunScalars(run_id, user, {{"loss", loss}});
  }
  // Latest oscillation ratio of one layer at one threshold ("0.005").
  void SetRunOscillation(int64_t run_id, const std::string& user, const std::string& layer,
                         const std::string& threshold, double ratio);
  // Removes every pendulum_run_* series of the run (it ended or was requeued).
  void RemoveRun(int64_t run_id);

  prometheus::Registry& registry() { return *registry_; }

 private:
  // One labelled gauge of a per-run family, so RemoveRun can drop it.
  struct RunSeries {
    prometheus::Family<prometheus::Gauge>* family;
    prometheus::Gauge* gauge;
  };
  void SetFamily(prometheus::Family<prometheus::Gauge>& family, const std::string& label,
                 std::map<std::string, prometheus::Gauge*>& seen,
                 const std::map<std::string, int64_t>& values) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetRunGauge(int64_t run_id, prometheus::Family<prometheus::Gauge>& family,
                   const std::map<std::string, std::string>& labels, double value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>& runs_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& user_running_;
  prometheus::Family<prometheus::Gauge>& user_gpus_;
  prometheus::Family<prometheus::Gauge>& workers_;
  prometheus::Family<prometheus::Gauge>& gpus_;
  prometheus::Gauge& gpus_busy_;
  prometheus::Gauge& gpus_free_;
  prometheus::Histogram& scheduling_latency_;
  prometheus::Counter& ingested_points_;
  prometheus::Counter& ingested_batches_;
  prometheus::Gauge& ingest_queue_;
  prometheus::Family<prometheus::Gauge>& worker_spool_events_;
  prometheus::Family<prometheus::Gauge>& worker_spool_bytes_;
  prometheus::Family<prometheus::Gauge>& run_loss_;
  prometheus::Family<prometheus::Gauge>& run_accuracy_;
  prometheus::Family<prometheus::Gauge>& run_lr_;
  prometheus::Family<prometheus::Gauge>& run_oscillation_;
  std::unique_ptr<prometheus::Exposer> exposer_;

  mutable absl::Mutex mu_;
  std::map<std::string, prometheus::Gauge*> runs_seen_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Gauge*> queue_seen_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Gauge*> user_running_seen_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Gauge*> user_gpus_seen_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Gauge*> workers_seen_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<prometheus::Gauge*, prometheus::Gauge*>> spool_seen_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::vector<RunSeries>> run_series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pendulum::metrics
