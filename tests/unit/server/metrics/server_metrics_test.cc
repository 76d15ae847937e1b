// ServerMetrics: label handling, per-run series life cycle and the exposer,
// read back through the registry's own Collect() (what Prometheus scrapes).
#include "server/metrics/server_metrics.h"

#include <map>
#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace pendulum::metrics {
namespace {

// Value of the gauge `name` with exactly `labels`, if present.
std::optional<double> Gauge(ServerMetrics& m, const std::string& name,
                            const std::map<std::string, std::string>& labels) {
  for (const auto& family : m.registry().Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> got;
      for (const auto& l : metric.label) got[l.name] = l.value;
      if (got == labels) return metric.gauge.value;
    }
  }
  return std::nullopt;
}

size_t Series(ServerMetrics& m, const std::string& name) {
  for (const auto& family : m.registry().Collect()) {
    if (family.name == name) return family.metric.size();
  }
  return 0;
}

TEST(ServerMetricsTest, RunSeriesAreSetPerRunAndRemovedWithTheirRunOnly) {
  ServerMetrics m;
  m.SetRunScalars(1, "alice", {{"loss", 0.5}, {"eval_acc", 0.9}, {"train_acc", 0.8}, {"lr", 0.1}, {"grad_norm", 3}});
  m.SetRunOscillation(1, "alice", "head", "0.005", 0.25);
  m.SetRunScalars(2, "bob", {{"loss", 1.5}});
  EXPECT_EQ(Gauge(m, "pendulum_run_loss", {{"run_id", "1"}, {"user", "alice"}}), 0.5);
  EXPECT_EQ(Gauge(m, "pendulum_run_accuracy", {{"run_id", "1"}, {"user", "alice"}, {"split", "eval"}}), 0.9);
  EXPECT_EQ(Gauge(m, "pendulum_run_accuracy", {{"run_id", "1"}, {"user", "alice"}, {"split", "train"}}), 0.8);
  EXPECT_EQ(Gauge(m, "pendulum_run_learning_rate", {{"run_id", "1"}, {"user", "alice"}}), 0.1);
  EXPECT_EQ(Gauge(m, "pendulum_run_oscillation_ratio",
                  {{"run_id", "1"}, {"user", "alice"}, {"layer", "head"}, {"threshold", "0.005"}}),
            0.25);
  // A newer value replaces the old one in place (no second series).
  m.SetRunScalars(1, "alice", {{"loss", 0.25}});
  EXPECT_EQ(Gauge(m, "pendulum_run_loss", {{"run_id", "1"}, {"user", "alice"}}), 0.25);
  EXPECT_EQ(Series(m, "pendulum_run_loss"), 2u);

  m.RemoveRun(1);
  EXPECT_EQ(Series(m, "pendulum_run_loss"), 1u);
  EXPECT_EQ(Series(m, "pendulum_run_accuracy"), 0u);
  EXPECT_EQ(Series(m, "pendulum_run_learning_rate"), 0u);
  EXPECT_EQ(Series(m, "pendulum_run_oscillation_ratio"), 0u);
  EXPECT_EQ(Gauge(m, "pendulum_run_loss", {{"run_id", "2"}, {"user", "bob"}}), 1.5);
  m.RemoveRun(1);  // idempotent
  m.RemoveRun(2);
  EXPECT_EQ(Series(m, "pendulum_run_loss"), 0u);
}

TEST(ServerMetricsTest, LabelSetsAreReplacedWholeSoEmptiedLabelsReadZero) {
  ServerMetrics m;
  m.SetQueueDepthByUser({{"alice", 3}, {"bob", 1}});
  m.SetQueueDepthByUser({{"bob", 2}});
  EXPECT_EQ(Gauge(m, "pendulum_queue_depth", {{"user", "alice"}}), 0);
  EXPECT_EQ(Gauge(m, "pendulum_queue_depth", {{"user", "bob"}}), 2);
  m.SetUsageByUser({{"alice", 1}}, {{"alice", 4}});
  EXPECT_EQ(Gauge(m, "pendulum_user_gpus", {{"user", "alice"}}), 4);
  EXPECT_EQ(Gauge(m, "pendulum_user_running_runs", {{"user", "alice"}}), 1);
}

TEST(ServerMetricsTest, SpoolLagPerWorkerIsDroppedWithTheWorker) {
  ServerMetrics m;
  m.SetWorkerSpool("w1", 12, 3400);
  m.SetWorkerSpool("w2", 0, 0);
  EXPECT_EQ(Gauge(m, "pendulum_spool_lag_events", {{"worker", "w1"}}), 12);
  EXPECT_EQ(Gauge(m, "pendulum_spool_lag_bytes", {{"worker", "w1"}}), 3400);
  m.RemoveWorker("w1");
  EXPECT_FALSE(Gauge(m, "pendulum_spool_lag_events", {{"worker", "w1"}}).has_value());
  EXPECT_EQ(Series(m, "pendulum_spool_lag_events"), 1u);
}

TEST(ServerMetricsTest, ExposerOnPortZeroReportsItsPortAndABusyPortIsAClearError) {
  ServerMetrics m;
  EXPECT_EQ(m.exposer_port(), 0);
  ASSERT_TRUE(m.StartExposer("127.0.0.1:0").ok());
  EXPECT_GT(m.exposer_port(), 0);
  ServerMetrics other;
  const std::string taken = "127.0.0.1:" + std::to_string(m.exposer_port());
  absl::Status s = other.StartExposer(taken);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--metrics-listen"), std::string::npos) << s;
  EXPECT_NE(s.message().find(taken), std::string::npos) << s;
}

}  // namespace
}  // namespace pendulum::metrics
