// Observability end to end: a real Prometheus server (generated config,
// loopback, 1 s scrapes) scrapes a real pendulum-server and pendulum-worker;
// a run submitted through the real API shows up in Prometheus's query API
// with its state, queue depth, per-user usage, loss/accuracy/lr/oscillation
// ratio, and its per-run series disappear once it ends. The trainer is
// metrics_trainer (fixed values, runs until cancelled), so the test needs no
// LibTorch. Skips only when the prometheus binary is missing.
#include <dlfcn.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "gtest/gtest.h"
#include "tests/integration/observability/prometheus_server.h"
#include "tests/support/test_paths.h"

namespace pendulum::testing {
namespace {

constexpr char kSpec[] = R"(name: observed
model: {arch: mlp, hidden: [8]}
data: {dataset: synthetic, synthetic: {num_train: 64, num_eval: 16, num_classes: 2, shape: [4]}}
optimizer: {type: sgd, lr: 0.05}
schedule: {epochs: 1, batch_size: 16}
)";

std::string MetricsTrainer() {
  const char* env = std::getenv("METRICS_TRAINER_PATH");
  return env ? env : (BinaryDir() / "tests" / "integration" / "observability" / "metrics_trainer").string();
}

bool NvmlPresent() {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return false;
  dlclose(lib);
  return true;
}

class PrometheusIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(PrometheusBinary())) {
      GTEST_SKIP() << "prometheus binary not found at " << PrometheusBinary()
                   << " (apt-get install prometheus, or set PROMETHEUS_BINARY); tests/run.sh installs it";
    }
    dir_ = MakeTestTempDir();
  }
  // Every process is a local of the test body, so all are gone by now; keep
  // the logs and the TSDB only when something failed.
  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
};

TEST_F(PrometheusIntegrationTest, ScrapesServerAndWorkerAndDropsRunSeriesWhenRunsEnd) {
  const fs::path db = dir_ / "pendulum.db";
  auto alice = cluster::CreateToken(db, "alice", "user", dir_);
  ASSERT_TRUE(alice.ok()) << alice.status();
  auto worker_token = cluster::CreateToken(db, "worker-1", "worker", dir_);
  ASSERT_TRUE(worker_token.ok()) << worker_token.status();

  auto server = cluster::Process::Start({cluster::ServerBinary(), "--db", db.string(), "--listen", "127.0.0.1:0",
                                         "--metrics-listen", "127.0.0.1:0", "--heartbeat-seconds", "1",
                                         "--lease-seconds", "10"},
                                        dir_ / "server.log");
  ASSERT_TRUE(server.ok()) << server.status();
  auto grpc_port = (*server)->WaitForLog("listening on 127\\.0\\.0\\.1:([0-9]+)", absl::Seconds(30));
  ASSERT_TRUE(grpc_port.ok()) << grpc_port.status();
  auto metrics_port = (*server)->WaitForLog("metrics on 127\\.0\\.0\\.1:([0-9]+)", absl::Seconds(5));
  ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
  ASSERT_NE(*metrics_port, "0");
  const std::string address = "127.0.0.1:" + *grpc_port;

  const int worker_metrics_port = FreeLoopbackPort();
  auto worker = cluster::Process::Start(
      {cluster::WorkerBinary(), "--server", address, "--worker-id", "w1", "--work-dir", (dir_ / "work").string(),
       "--trainer", MetricsTrainer(), "--slots", "1", "--metrics-listen",
       absl::StrCat("127.0.0.1:", worker_metrics_port)},
      dir_ / "worker.log", {{"PENDULUM_TOKEN", *worker_token}});
  ASSERT_TRUE(worker.ok()) << worker.status();

  auto prometheus = PrometheusServer::Start(
      dir_ / "prometheus", {{"pendulum-server", "127.0.0.1:" + *metrics_port},
                            {"pendulum-worker", absl::StrCat("127.0.0.1:", worker_metrics_port)}});
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();
  const PrometheusServer& prom = **prometheus;

  cluster::Client client(address, *alice);
  auto first = client.Submit(kSpec);
  ASSERT_TRUE(first.ok()) << first.status();
  auto running = client.WaitFor(*first, [](const v1::Run& r) { return r.state() == v1::RUNNING; },
                                absl::Seconds(30));
  ASSERT_TRUE(running.ok()) << running.status() << "\nworker log:\n" << (*worker)->Log();
  auto second = client.Submit(kSpec);  // one slot: this one waits in the queue
  ASSERT_TRUE(second.ok()) << second.status();
  const std::string run1 = std::to_string(*first);
  const std::string run2 = std::to_string(*second);

  // Both targets are up.
  EXPECT_TRUE(prom.WaitForValue("up{job=\"pendulum-server\"}", 1).ok()) << prom.Log();
  EXPECT_TRUE(prom.WaitForValue("up{job=\"pendulum-worker\"}", 1).ok()) << prom.Log();

  // Pool state as Prometheus sees it.
  EXPECT_TRUE(prom.WaitForValue("pendulum_runs{state=\"RUNNING\"}", 1).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_runs{state=\"QUEUED\"}", 1).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_queue_depth{user=\"alice\"}", 1).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_user_running_runs{user=\"alice\"}", 1).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_user_gpus{user=\"alice\"}", 1).ok());  // its CPU slot
  EXPECT_TRUE(prom.WaitForValue("pendulum_workers{state=\"ONLINE\"}", 1).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_scheduling_latency_seconds_count > bool 0", 1).ok());
  EXPECT_TRUE(prom.WaitForValue("rate(pendulum_ingested_points_total[5s]) > bool 0", 1).ok())
      << "ingestion rate should be positive while the trainer emits";
  EXPECT_TRUE(prom.WaitForValue("count(pendulum_spool_lag_events{worker=\"w1\"})", 1).ok())
      << "spool lag of w1 from its heartbeats";

  // Latest values of the running run, exactly what the trainer emits.
  const std::string sel = "{run_id=\"" + run1 + "\",user=\"alice\"}";
  EXPECT_TRUE(prom.WaitForValue("pendulum_run_loss" + sel, 0.75).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_run_accuracy{run_id=\"" + run1 + "\",split=\"eval\"}", 0.625).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_run_accuracy{run_id=\"" + run1 + "\",split=\"train\"}", 0.5).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_run_learning_rate" + sel, 0.05).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_run_oscillation_ratio{run_id=\"" + run1 +
                                    "\",layer=\"blocks.0.attn.qkv\",threshold=\"0.005\"}",
                                0.25)
                  .ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_run_oscillation_ratio{run_id=\"" + run1 + "\",layer=\"head\"}", 0.125).ok());

  // The worker's own exporter.
  EXPECT_TRUE(prom.WaitForValue("pendulum_worker_runs{job=\"pendulum-worker\",phase=\"running\"}", 1).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_worker_connected{job=\"pendulum-worker\"}", 1).ok());
  EXPECT_TRUE(prom.WaitForValue("count(pendulum_worker_spool_events{job=\"pendulum-worker\"})", 1).ok());
  // GPU series exist exactly when NVML does (none on a CPU host, not even for slots).
  auto gpus = prom.Value("count(pendulum_worker_gpu_utilization)");
  ASSERT_TRUE(gpus.ok()) << gpus.status();
  if (NvmlPresent()) {
    EXPECT_TRUE(gpus->has_value() && **gpus >= 1) << "NVML is present but no GPU series";
  } else {
    EXPECT_FALSE(gpus->has_value()) << "no NVML on this host, yet GPU series were exported";
  }

  // The run ends: its series go away, the queued run starts and gets its own.
  auto cancelled = client.Cancel(*first);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_TRUE(prom.WaitForAbsent("pendulum_run_loss{run_id=\"" + run1 + "\"}").ok());
  EXPECT_TRUE(prom.WaitForAbsent("pendulum_run_oscillation_ratio{run_id=\"" + run1 + "\"}").ok());
  EXPECT_TRUE(prom.WaitForAbsent("pendulum_run_accuracy{run_id=\"" + run1 + "\"}").ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_run_loss{run_id=\"" + run2 + "\"}", 0.75).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_runs{state=\"CANCELLED\"}", 1).ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_queue_depth{user=\"alice\"}", 0).ok());

  auto cancelled2 = client.Cancel(*second);
  ASSERT_TRUE(cancelled2.ok()) << cancelled2.status();
  EXPECT_TRUE(prom.WaitForAbsent("pendulum_run_loss").ok());
  EXPECT_TRUE(prom.WaitForValue("pendulum_user_running_runs{user=\"alice\"}", 0).ok());
  (*worker)->Stop();
  (*server)->Stop();
}

// deploy/prometheus/prometheus.yml is a valid Prometheus configuration.
TEST_F(PrometheusIntegrationTest, ShippedScrapeConfigIsValid) {
  const fs::path promtool = fs::path(PrometheusBinary()).parent_path() / "promtool";
  if (!fs::exists(promtool)) GTEST_SKIP() << "promtool not found beside " << PrometheusBinary();
  auto out = cluster::RunAndCapture(
      {promtool.string(), "check", "config", (SourceDir() / "deploy" / "prometheus" / "prometheus.yml").string()},
      dir_);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NE(out->find("SUCCESS"), std::string::npos) << *out;
}

// Every PromQL expression of the Grafana dashboards is accepted by a real
// Prometheus (status "success"), with Grafana's variables filled in.
TEST_F(PrometheusIntegrationTest, EveryDashboardPromQLExpressionRunsOnRealPrometheus) {
  auto prometheus = PrometheusServer::Start(dir_ / "prometheus", {});
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(SourceDir() / "deploy" / "grafana" / "dashboards")) {
    std::ifstream in(entry.path());
    nlohmann::json dashboard = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(dashboard.is_discarded()) << entry.path();
    std::vector<std::pair<std::string, std::string>> exprs;  // where, PromQL
    for (const auto& panel : dashboard["panels"]) {
      for (const auto& t : panel.value("targets", nlohmann::json::array())) {
        if (t.contains("expr")) exprs.emplace_back(panel.value("title", "?"), t["expr"].get<std::string>());
      }
    }
    for (const auto& v : dashboard["templating"]["list"]) {
      if (v["datasource"].value("type", "") != "prometheus") continue;
      // label_values(metric, label) is Grafana's, not PromQL: check its metric selector.
      std::string q = v["query"].is_string() ? v["query"].get<std::string>() : v["query"].value("query", "");
      std::smatch m;
      if (std::regex_search(q, m, std::regex("label_values\\(([^,]+),"))) q = m[1].str();
      exprs.emplace_back("variable " + v.value("name", "?"), q);
    }
    for (auto [where, expr] : exprs) {
      expr = std::regex_replace(expr, std::regex("\\$__rate_interval"), "1m");
      expr = std::regex_replace(expr, std::regex("\\$user"), ".*");
      auto result = (*prometheus)->Query(expr);
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_EQ((*result)["status"], "success")
          << entry.path().filename() << " " << where << ": " << expr << "\n" << result->dump();
      ++checked;
    }
  }
  EXPECT_GE(checked, 10) << "the dashboards should hold the pool overview's PromQL";
}

}  // namespace
}  // namespace pendulum::testing
