// pipeline_bench: end-to-end metric ingestion and scheduling latency with real
// processes on loopback, printed as JSON.
//  - ingest: pipeline_emitter (a protocol-obeying trainer that emits as fast as
//    it can) -> pendulum-worker (spool + fsync) -> pendulum-server -> SQLite,
//    in points/s from submit until the run is SUCCEEDED (which the worker
//    reports only after every event is acked, i.e. committed).
//  - raw_sqlite: the same number of rows inserted straight into the same
//    schema (WAL, synchronous=NORMAL, prepared INSERT OR IGNORE, 20000 events
//    per transaction) in this process: the ceiling for the pipeline.
//  - submit_to_running: SubmitRun until GetRun shows RUNNING, idle worker,
//    p50/p99 over --runs submissions.
// Usage: pipeline_bench [--events N] [--values K] [--runs M]
// Needs PENDULUM_BINARY_DIR (the build dir) and PENDULUM_SOURCE_DIR.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "tests/integration/worker/cluster.h"

namespace pc = pendulum::cluster;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

[[noreturn]] void Fail(const std::string& what) {
  std::cerr << "pipeline_bench: " << what << "\n";
  std::exit(1);
}

std::string SourceDir() {
  const char* env = std::getenv("PENDULUM_SOURCE_DIR");
  return env ? env : ".";
}

std::string SpecYaml(long events, long values) {
  return absl::StrCat(
      "name: bench-emitter\n"
      "model:\n  arch: mlp\n  hidden: [8]\n"
      "data:\n  dataset: synthetic\n  synthetic:\n    num_train: 64\n    num_eval: 16\n    num_classes: 2\n"
      "    shape: [4]\n"
      "optimizer:\n  type: sgd\n  lr: 0.1\n"
      "schedule:\n  epochs: 1\n  batch_size: 16\n"
      "resources:\n  cpus: 1\n"
      "tags:\n  bench_events: \"", events, "\"\n  bench_values: \"", values, "\"\n");
}

// Inserts events*values metric rows the way the server's ingestor does.
double RawInsertPointsPerSecond(const pc::fs::path& db_path, long events, long values) {
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) Fail("open raw db");
  const std::string schema = pc::ReadFile(pc::fs::path(SourceDir()) / "migrations" / "0001_initial.sql");
  char* err = nullptr;
  if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", nullptr, nullptr, &err) != SQLITE_OK ||
      sqlite3_exec(db, schema.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    Fail(std::string("raw schema: ") + (err ? err : "?"));
  }
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT OR IGNORE INTO metrics(run_id, attempt, seq, name_id, step, value, time_ms, superseded) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                     -1, &insert, nullptr);
  const long per_txn = 20000;
  const auto start = Clock::now();
  for (long first = 1; first <= events; first += per_txn) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    for (long seq = first; seq < first + per_txn && seq <= events; ++seq) {
      for (long v = 0; v < values; ++v) {
        sqlite3_bind_int64(insert, 1, 1);
        sqlite3_bind_int64(insert, 2, 1);
        sqlite3_bind_int64(insert, 3, seq);
        sqlite3_bind_int64(insert, 4, v + 1);
        sqlite3_bind_int64(insert, 5, seq);
        sqlite3_bind_double(insert, 6, 1.0 / static_cast<double>(seq));
        sqlite3_bind_int64(insert, 7, 1700000000000 + seq);
        if (sqlite3_step(insert) != SQLITE_DONE) Fail(sqlite3_errmsg(db));
        sqlite3_reset(insert);
      }
    }
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) Fail(sqlite3_errmsg(db));
  }
  const double secs = Seconds(Clock::now() - start);
  sqlite3_finalize(insert);
  sqlite3_close(db);
  return static_cast<double>(events * values) / secs;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  long events = 100000, values = 4, runs = 40;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--events")) events = std::atol(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--values")) values = std::atol(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--runs")) runs = std::atol(argv[i + 1]);
    else Fail(std::string("unknown flag ") + argv[i]);
  }
  const pc::fs::path dir = pc::fs::temp_directory_path() / ("pendulum-pipeline-bench-" + std::to_string(::getpid()));
  pc::fs::remove_all(dir);
  pc::fs::create_directories(dir);
  pc::ServerConfig config;
  config.db = dir / "pendulum.db";
  config.artifacts = dir / "artifacts";
  config.lease_seconds = 15;
  config.heartbeat_seconds = 3;
  auto worker_token = pc::CreateToken(config.db, "bench-worker", "worker", dir);
  auto user_token = pc::CreateToken(config.db, "bench", "user", dir);
  if (!worker_token.ok() || !user_token.ok()) Fail("token create failed");
  auto server = pc::Server::Start(config, dir / "server.log");
  if (!server.ok()) Fail(std::string(server.status().message()));
  pc::WorkerConfig wc;
  wc.server = (*server)->address();
  wc.token = *worker_token;
  wc.id = "bench-worker";
  wc.work_dir = dir / "work";
  wc.trainer = (pc::BuildDir() / "bench" / "pipeline" / "pipeline_emitter").string();
  auto worker = pc::StartWorker(wc, dir / "worker.log");
  if (!worker.ok() || !(*worker)->WaitForLog("connected as", absl::Seconds(30)).ok()) Fail("worker did not connect");
  pc::Client client((*server)->address(), *user_token);

  // --- end-to-end ingestion
  const auto t0 = Clock::now();
  auto run_id = client.Submit(SpecYaml(events, values));
  if (!run_id.ok()) Fail(std::string(run_id.status().message()));
  auto run = client.WaitFor(*run_id, [](const pendulum::v1::Run& r) { return pc::IsTerminal(r.state()); },
                            absl::Seconds(600));
  const double e2e_secs = Seconds(Clock::now() - t0);
  if (!run.ok() || run->state() != pendulum::v1::SUCCEEDED) {
    Fail("ingest run did not succeed: " + (run.ok() ? run->exit_reason() : std::string(run.status().message())));
  }
  pc::Db db(config.db);
  const int64_t stored = db.Count(absl::StrCat("SELECT COUNT(*) FROM metrics WHERE run_id=", *run_id));
  const double e2e_rate = static_cast<double>(stored) / e2e_secs;
  const double raw_rate = RawInsertPointsPerSecond(dir / "raw.db", events, values);

  // --- submit-to-running latency with an idle worker
  std::vector<double> latencies_ms, server_ms;
  for (long i = 0; i < runs; ++i) {
    const auto s0 = Clock::now();
    auto id = client.Submit(SpecYaml(1, 1));
    if (!id.ok()) Fail(std::string(id.status().message()));
    absl::StatusOr<pendulum::v1::Run> r;
    while (true) {
      r = client.Get(*id);
      if (!r.ok()) Fail(std::string(r.status().message()));
      if (r->state() >= pendulum::v1::RUNNING) break;
      absl::SleepFor(absl::Microseconds(500));
    }
    latencies_ms.push_back(1000.0 * Seconds(Clock::now() - s0));
    auto done = client.WaitFor(*id, [](const pendulum::v1::Run& x) { return pc::IsTerminal(x.state()); },
                               absl::Seconds(60));
    if (!done.ok()) Fail("latency run did not finish");
    if (done->started_unix_ms() > 0) {
      server_ms.push_back(static_cast<double>(done->started_unix_ms() - done->created_unix_ms()));
    }
  }

  std::printf(
      "{\n  \"ingest\": {\"events\": %ld, \"values_per_event\": %ld, \"points_stored\": %lld, "
      "\"points_expected\": %ld, \"seconds\": %.3f, \"points_per_second\": %.0f},\n"
      "  \"raw_sqlite\": {\"points\": %ld, \"points_per_second\": %.0f},\n"
      "  \"ingest_over_raw\": %.3f,\n"
      "  \"submit_to_running_ms\": {\"runs\": %ld, \"p50\": %.2f, \"p99\": %.2f, \"max\": %.2f, "
      "\"server_p50\": %.1f, \"server_p99\": %.1f}\n}\n",
      events, values, static_cast<long long>(stored), events * values, e2e_secs, e2e_rate, events * values,
      raw_rate, e2e_rate / raw_rate, runs, Percentile(latencies_ms, 0.5), Percentile(latencies_ms, 0.99),
      *std::max_element(latencies_ms.begin(), latencies_ms.end()),
      server_ms.empty() ? -1.0 : Percentile(server_ms, 0.5), server_ms.empty() ? -1.0 : Percentile(server_ms, 0.99));
  worker->reset();
  server->reset();
  pc::fs::remove_all(dir);
  return 0;
}
