#include "worker/daemon/worker_metrics.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "prometheus/client_metric.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "worker/daemon/gpu_probe.h"

namespace pendulum::daemon {
namespace {

prometheus::MetricFamily Gauge(const std::string& name, const std::string& help) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = prometheus::MetricType::Gauge;
  return family;
}

void AddSample(prometheus::MetricFamily* family, double value,
               std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  family->metric.push_back(std::move(metric));
}

}  // namespace

class WorkerMetrics::Collector : public prometheus::Collectable {
 public:
  // The collector has its own NVML probe (NVML reference-counts its init), so
  // GPU series exist exactly when NVML does: fake --gpus slots are not GPUs
  // and export no utilisation or memory.
  explicit Collector(const Worker* worker) : worker_(worker) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    const WorkerStats stats = worker_->Stats();
    std::vector<prometheus::MetricFamily> out;
    auto runs = Gauge("pendulum_worker_runs", "Run attempts on this worker by phase");
    AddSample(&runs, stats.running, {{"phase", "running"}});
    AddSample(&runs, stats.finishing, {{"phase", "delivering"}});
    out.push_back(std::move(runs));
    auto spool_events = Gauge("pendulum_worker_spool_events", "Spooled trainer events not yet acked by the server");
    AddSample(&spool_events, static_cast<double>(stats.spool_events));
    out.push_back(std::move(spool_events));
    auto spool_bytes = Gauge("pendulum_worker_spool_bytes", "Bytes of spooled events not yet acked");
    AddSample(&spool_bytes, static_cast<double>(stats.spool_bytes));
    out.push_back(std::move(spool_bytes));
    auto connected = Gauge("pendulum_worker_connected", "1 while the Connect stream to the server is up");
    AddSample(&connected, stats.connected ? 1 : 0);
    out.push_back(std::move(connected));
    if (!probe_.available()) return out;
    auto util = Gauge("pendulum_worker_gpu_utilization", "GPU utilisation 0..1 (NVML)");
    auto mem = Gauge("pendulum_worker_gpu_memory_used_bytes", "GPU memory in use (NVML)");
    auto total = Gauge("pendulum_worker_gpu_memory_total_bytes", "GPU memory (NVML)");
    for (const auto& gpu : probe_.Query()) {
      std::vector<prometheus::ClientMetric::Label> labels = {{"gpu", std::to_string(gpu.index())},
                                                             {"name", gpu.name()}};
      AddSample(&util, gpu.utilization(), labels);
      AddSample(&mem, static_cast<double>(gpu.memory_used_mb()) * 1048576.0, labels);
      AddSample(&total, static_cast<double>(gpu.memory_mb()) * 1048576.0, labels);
    }
    out.push_back(std::move(util));
    out.push_back(std::move(mem));
    out.push_back(std::move(total));
    return out;
  }

 private:
  const Worker* worker_;
  GpuProbe probe_;
};

absl::StatusOr<std::unique_ptr<WorkerMetrics>> WorkerMetrics::Start(const std::string& address,
                                                                    const Worker* worker) {
  std::unique_ptr<WorkerMetrics> metrics(new WorkerMetrics());
  metrics->collector_ = std::make_shared<Collector>(worker);
  try {
    // prometheus-cpp (civetweb) throws when it cannot bind; keep it inside.
    metrics->exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics exposer on ", address, ": ", e.what()));
  }
  metrics->exposer_->RegisterCollectable(metrics->collector_);
  return metrics;
}

WorkerMetrics::~WorkerMetrics() {
  if (exposer_) exposer_->RemoveCollectable(collector_);
}

}  // namespace pendulum::daemon
