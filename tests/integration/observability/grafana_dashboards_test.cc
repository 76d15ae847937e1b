// deploy/grafana: the provisioning files and both dashboards are valid, refer
// only to the provisioned datasources and to defined template variables, and
// every SQLite query they contain (panels and variables) runs against a real
// database made by the server's own migrations and filled through the real
// MetricIngestor, returning the values a user expects to see.
// (Their PromQL is checked against a real Prometheus in prometheus_integration_test.)
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/store/metric_ingestor.h"
#include "tests/unit/server/store/store_test_env.h"

namespace pendulum::store::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path GrafanaDir() { return pendulum::testing::SourceDir() / "deploy" / "grafana"; }

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json LoadDashboard(const std::string& name) {
  const fs::path path = GrafanaDir() / "dashboards" / name;
  json j = json::parse(Slurp(path), nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << path << " is not valid JSON";
  return j;
}

struct Query {
  std::string where;  // "panel 'Loss'" / "variable run_id"
  std::string datasource_uid;
  std::string text;   // SQL or PromQL
};

// Every query of a dashboard: panel targets and query variables.
std::vector<Query> Queries(const json& dashboard) {
  std::vector<Query> out;
  for (const json& panel : dashboard["panels"]) {
    for (const json& t : panel.value("targets", json::array())) {
      const std::string uid = t.contains("datasource") ? t["datasource"].value("uid", "") : "";
      std::string text = t.contains("expr") ? t["expr"].get<std::string>() : t.value("rawQueryText", "");
      out.push_back({"panel '" + panel.value("title", "?") + "'", uid, text});
    }
  }
  for (const json& v : dashboard["templating"]["list"]) {
    if (v.value("type", "") != "query") continue;
    std::string text = v["query"].is_string() ? v["query"].get<std::string>() : v["query"].value("query", "");
    out.push_back({"variable " + v.value("name", "?"), v["datasource"].value("uid", ""), text});
  }
  return out;
}

// Datasource uids declared in the provisioning file ("uid: x" lines).
std::set<std::string> ProvisionedUids() {
  std::set<std::string> uids;
  const std::string text = Slurp(GrafanaDir() / "provisioning" / "datasources" / "pendulum.yaml");
  std::regex re("\\n\\s*uid:\\s*([A-Za-z0-9_-]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    uids.insert((*it)[1].str());
  }
  return uids;
}

TEST(GrafanaProvisioningTest, DatasourcesAndDashboardProviderAreProvisioned) {
  const std::string ds = Slurp(GrafanaDir() / "provisioning" / "datasources" / "pendulum.yaml");
  EXPECT_NE(ds.find("type: prometheus"), std::string::npos);
  EXPECT_NE(ds.find("type: frser-sqlite-datasource"), std::string::npos) << "the SQLite datasource plugin";
  EXPECT_EQ(ProvisionedUids(), (std::set<std::string>{"pendulum-prometheus", "pendulum-sqlite"}));
  const std::string dash = Slurp(GrafanaDir() / "provisioning" / "dashboards" / "pendulum.yaml");
  EXPECT_NE(dash.find("type: file"), std::string::npos);
  EXPECT_NE(dash.find("apiVersion: 1"), std::string::npos);
}

TEST(GrafanaDashboardTest, DashboardsAreWellFormedAndUseOnlyProvisionedDatasourcesAndDefinedVariables) {
  const std::set<std::string> uids = ProvisionedUids();
  std::set<std::string> dashboard_uids;
  for (const std::string name : {"pool_overview.json", "run_detail.json"}) {
    SCOPED_TRACE(name);
    json d = LoadDashboard(name);
    ASSERT_TRUE(d.is_object());
    ASSERT_TRUE(d.contains("uid") && d.contains("title") && d.contains("panels") && d.contains("schemaVersion"));
    EXPECT_TRUE(dashboard_uids.insert(d["uid"].get<std::string>()).second) << "duplicate dashboard uid";
    ASSERT_FALSE(d["panels"].empty());
    std::set<int> ids;
    std::set<std::string> variables = {"__rate_interval", "__interval"};  // Grafana built-ins
    for (const json& v : d["templating"]["list"]) variables.insert(v["name"].get<std::string>());
    for (const json& panel : d["panels"]) {
      const std::string title = panel.value("title", "");
      EXPECT_FALSE(title.empty());
      EXPECT_TRUE(ids.insert(panel["id"].get<int>()).second) << "duplicate panel id in " << title;
      ASSERT_TRUE(panel.contains("gridPos")) << title;
      EXPECT_LE(panel["gridPos"]["x"].get<int>() + panel["gridPos"]["w"].get<int>(), 24) << title;
      EXPECT_FALSE(panel.value("targets", json::array()).empty()) << title << " has no query";
    }
    for (const Query& q : Queries(d)) {
      EXPECT_EQ(uids.count(q.datasource_uid), 1u) << q.where << " uses datasource '" << q.datasource_uid << "'";
      EXPECT_FALSE(q.text.empty()) << q.where;
      std::regex var("\\$([A-Za-z_][A-Za-z0-9_]*)");
      for (auto it = std::sregex_iterator(q.text.begin(), q.text.end(), var); it != std::sregex_iterator(); ++it) {
        EXPECT_EQ(variables.count((*it)[1].str()), 1u) << q.where << " uses undefined variable $" << (*it)[1];
      }
    }
  }
  // The panels exist.
  std::set<std::string> titles;
  for (const std::string name : {"pool_overview.json", "run_detail.json"}) {
    const json d = LoadDashboard(name);
    for (const json& p : d["panels"]) titles.insert(p["title"].get<std::string>());
  }
  for (const char* t : {"Queued runs per user", "GPUs busy", "GPUs in use per user", "Scheduling latency", "Loss",
                        "Accuracy", "Oscillation ratio per layer", "Frozen-weight ratio under CGA",
                        "Learning rate"}) {
    EXPECT_EQ(titles.count(t), 1u) << "missing panel '" << t << "'";
  }
}

// Rows of `sql` as column name → text value.
using Row = std::map<std::string, std::string>;
absl::StatusOr<std::vector<Row>> RunSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return absl::InternalError("cannot open " + path);
  }
  sqlite3_stmt* stmt = nullptr;
  std::vector<Row> rows;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    std::string error = sqlite3_errmsg(db);
    sqlite3_close(db);
    return absl::InvalidArgumentError(error);
  }
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    Row row;
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      const unsigned char* text = sqlite3_column_text(stmt, c);
      row[sqlite3_column_name(stmt, c)] = text ? reinterpret_cast<const char*>(text) : "NULL";
    }
    rows.push_back(row);
  }
  std::string error = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (!error.empty()) return absl::InternalError(error);
  return rows;
}

class GrafanaSqliteQueriesTest : public StoreTest {};

TEST_F(GrafanaSqliteQueriesTest, EveryRunDetailQueryRunsOnARealDatabaseAndShowsTheRun) {
  pendulum::v1::Run run = MakeRun("vit-ofq", "alice");
  RunStore runs(db_.get(), &clock_);
  ASSERT_TRUE(runs.AssignRun(run.id(), "w1", "test").ok());
  auto ingestor = MetricIngestor::Start(db_.get(), &clock_);
  ASSERT_TRUE(ingestor.ok()) << ingestor.status();
  // Five steps of what an OFQ run emits: scalars and per-layer statistics.
  pendulum::v1::RunEvents batch;
  batch.set_run_id(run.id());
  batch.set_attempt(1);
  uint64_t seq = 0;
  for (int step = 1; step <= 5; ++step) {
    *batch.add_events() = ScalarEvent(++seq, step,
                                      {{"loss", 2.0 / step}, {"eval_acc", 0.1 * step}, {"train_acc", 0.12 * step},
                                       {"lr", 0.01}, {"ofq/cga_free_frac", 0.9 - 0.1 * step}});
    pendulum::v1::TrainerEvent osc;
    osc.set_seq(++seq);
    osc.set_time_unix_ms(1767225600000 + static_cast<int64_t>(seq));
    osc.mutable_oscillation()->set_step(step);
    for (const char* layer : {"blocks.0.attn.qkv", "head"}) {
      auto* l = osc.mutable_oscillation()->add_layers();
      l->set_step(step);
      l->set_layer(layer);
      (*l->mutable_values())["osc_ratio_0.005"] = 0.01 * step;
      (*l->mutable_values())["flip_rate"] = 0.02;
      (*l->mutable_values())["cga_free_frac"] = 0.75;
    }
    *batch.add_events() = osc;
  }
  auto ack = (*ingestor)->Submit(batch).get();
  ASSERT_TRUE(ack.ok()) << ack.status();
  ASSERT_EQ(ack->acked_seq, seq);

  json dashboard = LoadDashboard("run_detail.json");
  std::map<std::string, std::vector<Row>> results;
  for (const Query& q : Queries(dashboard)) {
    ASSERT_EQ(q.datasource_uid, "pendulum-sqlite") << q.where;
    const std::string sql = absl::StrReplaceAll(q.text, {{"$run_id", std::to_string(run.id())},
                                                         {"$threshold", "0.005"}});
    auto rows = RunSql(path_, sql);
    ASSERT_TRUE(rows.ok()) << q.where << ": " << rows.status() << "\n" << sql;
    EXPECT_FALSE(rows->empty()) << q.where << " returns no rows for a run that has data:\n" << sql;
    results[q.where] = *rows;
  }
  // Values as a user reads them.
  const auto& loss = results["panel 'Loss'"];
  ASSERT_EQ(loss.size(), 5u);
  EXPECT_EQ(loss[0].at("step"), "1");
  EXPECT_DOUBLE_EQ(std::stod(loss[4].at("loss")), 0.4);
  EXPECT_EQ(results["panel 'Accuracy'"].size(), 10u) << "eval_acc and train_acc, five steps each";
  const auto& osc = results["panel 'Oscillation ratio per layer'"];
  ASSERT_EQ(osc.size(), 10u) << "two layers, five steps";
  EXPECT_EQ(osc[0].at("layer"), "blocks.0.attn.qkv");
  EXPECT_DOUBLE_EQ(std::stod(osc[9].at("osc_ratio")), 0.05);
  const auto& frozen = results["panel 'Frozen-weight ratio under CGA'"];
  ASSERT_EQ(frozen.size(), 5u);
  EXPECT_NEAR(std::stod(frozen[0].at("frozen_ratio")), 0.2, 1e-12) << "1 - cga_free_frac (0.8)";
  EXPECT_NEAR(std::stod(results["panel 'Frozen-weight ratio under CGA per layer'"][0].at("frozen_ratio")), 0.25,
              1e-12);
  EXPECT_EQ(results["panel 'Learning rate'"].size(), 5u);
  EXPECT_EQ(results["panel 'Run'"][0].at("state"), "STARTING");
  EXPECT_EQ(results["panel 'Run'"][0].at("owner"), "alice");
  EXPECT_EQ(results["variable run_id"][0].at("__value"), std::to_string(run.id()));
  EXPECT_EQ(results["variable threshold"][0].at("threshold"), "0.005");
  (*ingestor).reset();
}

}  // namespace
}  // namespace pendulum::store::testing
