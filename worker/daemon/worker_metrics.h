#pragma once
// WorkerMetrics: the worker's Prometheus exposer (--metrics-listen). Values
// are computed at scrape time from Worker::Stats(): runs, spool size,
// connection state, and per-GPU utilisation and memory (only when NVML is
// present: loaded with dlopen, so neither the build nor a CPU host needs CUDA).
// Thread-safe; the exposer's own threads call Collect().
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/exposer.h"
#include "worker/daemon/worker.h"

namespace pendulum::daemon {

class WorkerMetrics {
 public:
  // Listens on `address` ("127.0.0.1:9101"); `worker` must outlive this.
  static absl::StatusOr<std::unique_ptr<WorkerMetrics>> Start(const std::string& address, const Worker* worker);
  ~WorkerMetrics();

 private:
  class Collector;
  WorkerMetrics() = default;
  std::shared_ptr<Collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace pendulum::daemon
