// SubmitRun throughput and latency on loopback against a real in-process
// pendulum Server (real SQLite file, real gRPC), next to the raw SQLite insert
// rate measured in the same run on the same disk: one INSERT per transaction
// (what one SubmitRun costs in SQLite), and the same rows batched in one
// transaction. Prints one JSON object on stdout.
// Then submit-to-assignment latency with an idle worker connected (the
// server's share of submit-to-running: SubmitRun returns → the scheduler
// places the run → the Assignment arrives on the worker's Connect stream).
//   submit_bench [--runs N] [--clients K] [--dir DIR]

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "nlohmann/json.hpp"
#include "pendulum/v1/run_service.grpc.pb.h"
#include "pendulum/v1/worker_service.grpc.pb.h"
#include "common/log.h"
#include "server/api/server.h"
#include "server/store/database.h"
#include "server/store/token_store.h"

namespace {

constexpr char kSpec[] = R"(name: bench
model: {arch: mlp, hidden: [8]}
data: {dataset: synthetic}
optimizer: {type: sgd, lr: 0.1}
schedule: {epochs: 1, batch_size: 16}
)";

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

// Raw SQLite: `rows` inserts of a spec-sized blob into a runs-like table, WAL,
// synchronous=NORMAL (the server's settings); per-row transactions or one.
double RawInsertRate(const std::filesystem::path& path, int rows, bool one_transaction, size_t blob_bytes) {
  std::filesystem::remove(path);
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "CREATE TABLE runs(id INTEGER PRIMARY KEY, owner TEXT, state INTEGER, spec BLOB, created INTEGER);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO runs(owner, state, spec, created) VALUES(?, 1, ?, ?)", -1, &stmt, nullptr);
  std::string blob(blob_bytes, 'x');
  absl::Time start = absl::Now();
  if (one_transaction) sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  for (int i = 0; i < rows; ++i) {
    if (!one_transaction) sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    sqlite3_bind_text(stmt, 1, "bench", -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 2, blob.data(), blob.size(), SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, i);
    sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (!one_transaction) sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  if (one_transaction) sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rows / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 2000;
  int clients = 4;
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "pendulum-submit-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--runs") (void)absl::SimpleAtoi(argv[i + 1], &runs);
    else if (flag == "--clients") (void)absl::SimpleAtoi(argv[i + 1], &clients);
    else if (flag == "--dir") dir = argv[i + 1];
    else {
      std::cerr << "unknown flag " << flag << "; usage: submit_bench [--runs N] [--clients K] [--dir DIR]\n";
      return 2;
    }
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  pendulum::api::ServerOptions options;
  options.db_path = (dir / "bench.db").string();
  options.listen = "127.0.0.1:0";
  std::string token;
  {
    pendulum::store::DatabaseOptions db_options;
    db_options.path = options.db_path;
    auto db = pendulum::store::Database::Open(db_options);
    if (!db.ok()) {
      std::cerr << db.status() << "\n";
      return 1;
    }
    pendulum::store::TokenStore tokens(db->get(), pendulum::RealClock::Get());
    token = tokens.CreateToken("bench", pendulum::v1::USER, "bench").value().token;
  }
  auto server = pendulum::api::Server::Start(options);
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 1;
  }
  pendulum::log::SetMinLevel(pendulum::log::Level::kWarning);

  pendulum::v1::SubmitRunRequest request;
  request.set_spec_text(kSpec);
  auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
  auto stub = pendulum::v1::RunService::NewStub(channel);
  // Warm-up (connection, statement caches).
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext c;
    c.AddMetadata("authorization", "Bearer " + token);
    pendulum::v1::SubmitRunResponse r;
    const grpc::Status s = stub->SubmitRun(&c, request, &r);
    if (!s.ok()) {  // a broken set-up would otherwise be timed as a fast error path
      std::cerr << "submit_bench: warm-up SubmitRun failed: " << s.error_message() << "\n";
      return 1;
    }
  }

  std::vector<std::vector<double>> latencies(clients);
  std::atomic<int> next{0};
  std::atomic<int> errors{0};
  absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int k = 0; k < clients; ++k) {
    threads.emplace_back([&, k] {
      while (next.fetch_add(1) < runs) {
        grpc::ClientContext c;
        c.AddMetadata("authorization", "Bearer " + token);
        pendulum::v1::SubmitRunResponse r;
        absl::Time t0 = absl::Now();
        grpc::Status s = stub->SubmitRun(&c, request, &r);
        latencies[k].push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
        if (!s.ok()) errors.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());

  // Submit-to-assignment with one idle worker (one slot): each run is
  // submitted, its Assignment awaited, then reported SUCCEEDED to free the slot.
  std::string worker_token;
  {
    pendulum::store::DatabaseOptions db_options;
    db_options.path = options.db_path;
    auto db = pendulum::store::Database::Open(db_options);
    pendulum::store::TokenStore tokens(db->get(), pendulum::RealClock::Get());
    worker_token = tokens.CreateToken("bench-worker", pendulum::v1::WORKER, "bench").value().token;
  }
  // Clear the queue left by the throughput phase so the worker starts idle.
  {
    pendulum::v1::ListRunsRequest list;
    list.add_states(pendulum::v1::QUEUED);
    list.set_page_size(1000);
    while (true) {
      grpc::ClientContext c;
      c.AddMetadata("authorization", "Bearer " + token);
      pendulum::v1::ListRunsResponse listed;
      if (!stub->ListRuns(&c, list, &listed).ok() || listed.runs().empty()) break;
      for (const auto& r : listed.runs()) {
        grpc::ClientContext cc;
        cc.AddMetadata("authorization", "Bearer " + token);
        pendulum::v1::CancelRunRequest cancel;
        cancel.set_run_id(r.id());
        pendulum::v1::Run ignored;
        const grpc::Status s = stub->CancelRun(&cc, cancel, &ignored);
        if (!s.ok()) {  // the same run would be listed again: stop instead of looping forever
          std::cerr << "submit_bench: cancelling run " << r.id() << " failed: " << s.error_message() << "\n";
          return 1;
        }
      }
    }
  }
  auto worker_stub = pendulum::v1::WorkerService::NewStub(channel);
  {
    grpc::ClientContext c;
    c.AddMetadata("authorization", "Bearer " + worker_token);
    pendulum::v1::RegisterRequest reg;
    reg.set_worker_id("bench-worker");
    reg.set_slots(1);
    pendulum::v1::RegisterResponse r;
    grpc::Status s = worker_stub->Register(&c, reg, &r);
    if (!s.ok()) {
      std::cerr << "register: " << s.error_message() << "\n";
      return 1;
    }
  }
  grpc::ClientContext stream_context;
  stream_context.AddMetadata("authorization", "Bearer " + worker_token);
  auto stream = worker_stub->Connect(&stream_context);
  pendulum::v1::WorkerMessage hello;
  hello.mutable_hello()->set_worker_id("bench-worker");
  stream->Write(hello);
  const int placements = std::min(runs, 300);
  std::vector<double> to_assignment;
  for (int i = 0; i < placements; ++i) {
    grpc::ClientContext c;
    c.AddMetadata("authorization", "Bearer " + token);
    pendulum::v1::SubmitRunResponse r;
    absl::Time t0 = absl::Now();
    if (!stub->SubmitRun(&c, request, &r).ok()) {
      errors.fetch_add(1);
      continue;
    }
    pendulum::v1::ServerMessage m;
    bool got = false;
    while (stream->Read(&m)) {
      if (m.has_assign() && m.assign().run_id() == r.run_ids(0)) {
        got = true;
        break;
      }
    }
    if (!got) {
      errors.fetch_add(1);
      break;
    }
    to_assignment.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    pendulum::v1::WorkerMessage done;
    done.mutable_status()->set_run_id(m.assign().run_id());
    done.mutable_status()->set_attempt(m.assign().attempt());
    done.mutable_status()->set_state(pendulum::v1::SUCCEEDED);
    stream->Write(done);
  }
  stream->WritesDone();
  stream_context.TryCancel();
  stream->Finish().IgnoreError();
  (*server)->Shutdown();
  server->reset();

  double raw_per_txn = RawInsertRate(dir / "raw.db", runs, false, 200);
  double raw_batched = RawInsertRate(dir / "raw-batched.db", runs * 10, true, 200);

  nlohmann::json out = {
      {"benchmark", "submit_run"},
      {"runs", runs},
      {"clients", clients},
      {"errors", errors.load()},
      {"submit_runs_per_second", runs / seconds},
      {"submit_latency_ms_p50", Percentile(all, 0.50)},
      {"submit_latency_ms_p99", Percentile(all, 0.99)},
      {"raw_sqlite_inserts_per_second_one_txn_each", raw_per_txn},
      {"raw_sqlite_inserts_per_second_batched", raw_batched},
      {"submit_vs_raw_one_txn_each", (runs / seconds) / raw_per_txn},
      {"submit_to_assignment_runs", to_assignment.size()},
      {"submit_to_assignment_ms_p50", Percentile(to_assignment, 0.50)},
      {"submit_to_assignment_ms_p99", Percentile(to_assignment, 0.99)},
  };
  std::cout << out.dump(2) << std::endl;
  std::filesystem::remove_all(dir);
  return errors.load() == 0 ? 0 : 1;
}
