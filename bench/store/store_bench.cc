// store_bench: how close the MetricIngestor comes to raw SQLite.
//
// raw:      one connection, one prepared INSERT into the real `metrics` table
//           (same schema, keys and index), COMMIT every --raw_txn_rows rows.
// ingestor: the same points as TrainerEvent Scalars batches of
//           --batch_events events (what a worker sends), through
//           MetricIngestor::Submit → writer thread → commit → ack callback.
// Both use fresh database files in --dir with the real migrations. Each
// measurement is repeated --repeat times; the median is reported. Prints JSON.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "server/store/database.h"
#include "server/store/metric_ingestor.h"
#include "server/store/run_store.h"
#include "server/store/user_store.h"

ABSL_FLAG(int64_t, events, 100000, "trainer events (each carries --values scalars)");
ABSL_FLAG(int, values, 4, "scalar values per event (rows per event)");
ABSL_FLAG(int, batch_events, 500, "events per RunEvents batch handed to the ingestor");
ABSL_FLAG(int, raw_txn_rows, 2000, "rows per transaction in the raw insert loop");
ABSL_FLAG(int, max_events_per_txn, pendulum::store::IngestorOptions().max_events_per_transaction,
          "IngestorOptions.max_events_per_transaction");
ABSL_FLAG(int, repeat, 3, "repetitions of each measurement (median reported)");
ABSL_FLAG(std::string, dir, "", "directory for the database files (default: a temp dir, removed)");
ABSL_FLAG(std::string, synchronous, "NORMAL", "PRAGMA synchronous for both: NORMAL or FULL");

namespace pendulum::store {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

[[noreturn]] void Die(const absl::Status& s, const char* what) {
  std::fprintf(stderr, "store_bench: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

std::unique_ptr<Database> OpenFresh(const std::filesystem::path& path) {
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
  DatabaseOptions options;
  options.path = path.string();
  options.connection.synchronous = absl::GetFlag(FLAGS_synchronous);
  auto db = Database::Open(options);
  if (!db.ok()) Die(db.status(), "open");
  return std::move(db).value();
}

// Rows per second of plain prepared INSERTs into the metrics table.
double RawRate(const std::filesystem::path& path, int64_t events, int values, int txn_rows) {
  auto db = OpenFresh(path);
  auto conn = db->OpenConnection();
  if (!conn.ok()) Die(conn.status(), "connect");
  Connection* c = conn->get();
  std::vector<int64_t> name_ids;
  for (int v = 0; v < values; ++v) {
    if (auto s = c->Exec(absl::StrCat("INSERT INTO metric_names(name) VALUES ('m", v, "')")); !s.ok()) Die(s, "names");
    name_ids.push_back(c->LastInsertRowId());
  }
  auto stmt = c->Prepare(
      "INSERT INTO metrics(run_id, attempt, seq, name_id, step, value, time_ms, superseded) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, 0)");
  if (!stmt.ok()) Die(stmt.status(), "prepare");
  Statement* s = *stmt;
  const int64_t now = RealClock::Get()->NowUnixMillis();
  const auto t0 = Clock::now();
  int64_t in_txn = 0;
  if (auto st = c->Exec("BEGIN"); !st.ok()) Die(st, "begin");
  for (int64_t seq = 1; seq <= events; ++seq) {
    for (int v = 0; v < values; ++v) {
      s->Bind(1, int64_t{1}).Bind(2, int64_t{1}).Bind(3, seq).Bind(4, name_ids[v]).Bind(5, seq)
          .Bind(6, 0.001 * static_cast<double>(seq + v)).Bind(7, now + seq);
      if (auto st = s->Run(); !st.ok()) Die(st, "insert");
      s->Reset();
      if (++in_txn == txn_rows) {
        if (auto st = c->Exec("COMMIT; BEGIN"); !st.ok()) Die(st, "commit");
        in_txn = 0;
      }
    }
  }
  if (auto st = c->Exec("COMMIT"); !st.ok()) Die(st, "commit");
  const double secs = Seconds(t0, Clock::now());
  return static_cast<double>(events * values) / secs;
}

// Points (scalar rows) per second through MetricIngestor, submit to last ack.
double IngestorRate(const std::filesystem::path& path, int64_t events, int values, int batch_events) {
  auto db = OpenFresh(path);
  UserStore users(db.get(), RealClock::Get());
  if (auto u = users.CreateUser("bench", pendulum::v1::USER); !u.ok()) Die(u.status(), "user");
  RunStore runs(db.get(), RealClock::Get());
  pendulum::v1::RunSpec spec;
  spec.set_name("bench");
  auto run = runs.CreateRun(spec, "bench");
  if (!run.ok()) Die(run.status(), "run");
  if (auto a = runs.AssignRun(run->id(), "w", "bench"); !a.ok()) Die(a.status(), "assign");

  // Batches are built before timing: on the server they arrive parsed by gRPC.
  std::vector<pendulum::v1::RunEvents> batches;
  const int64_t now = RealClock::Get()->NowUnixMillis();
  for (int64_t first = 1; first <= events; first += batch_events) {
    pendulum::v1::RunEvents b;
    b.set_run_id(run->id());
    b.set_attempt(1);
    for (int64_t seq = first; seq < std::min(events + 1, first + batch_events); ++seq) {
      auto* e = b.add_events();
      e->set_seq(static_cast<uint64_t>(seq));
      e->set_time_unix_ms(now + seq);
      e->mutable_scalars()->set_step(seq);
      for (int v = 0; v < values; ++v) {
        (*e->mutable_scalars()->mutable_values())[absl::StrCat("m", v)] = 0.001 * static_cast<double>(seq + v);
      }
    }
    batches.push_back(std::move(b));
  }
  IngestorOptions options;
  options.max_events_per_transaction = absl::GetFlag(FLAGS_max_events_per_txn);
  auto ingestor = MetricIngestor::Start(db.get(), RealClock::Get(), options);
  if (!ingestor.ok()) Die(ingestor.status(), "start");
  std::atomic<uint64_t> acked{0};
  std::atomic<int64_t> errors{0};
  const auto t0 = Clock::now();
  for (auto& b : batches) {
    (*ingestor)->Submit(std::move(b), [&](absl::StatusOr<IngestAck> ack) {
      if (!ack.ok()) {
        ++errors;
        return;
      }
      uint64_t prev = acked.load();
      while (ack->acked_seq > prev && !acked.compare_exchange_weak(prev, ack->acked_seq)) {
      }
    });
  }
  (*ingestor)->Flush();
  const double secs = Seconds(t0, Clock::now());
  if (errors.load() != 0 || acked.load() != static_cast<uint64_t>(events)) {
    std::fprintf(stderr, "store_bench: ingestor acked %llu of %lld events, %lld errors\n",
                 static_cast<unsigned long long>(acked.load()), static_cast<long long>(events),
                 static_cast<long long>(errors.load()));
    std::exit(1);
  }
  return static_cast<double>(events * values) / secs;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string Json(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) absl::StrAppend(&out, i ? ", " : "", static_cast<int64_t>(v[i]));
  return out + "]";
}

int Main() {
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int values = absl::GetFlag(FLAGS_values);
  const int batch_events = absl::GetFlag(FLAGS_batch_events);
  const int txn_rows = absl::GetFlag(FLAGS_raw_txn_rows);
  const int repeat = std::max(1, absl::GetFlag(FLAGS_repeat));
  if (events < 1 || values < 1 || batch_events < 1 || txn_rows < 1) {
    std::fprintf(stderr, "store_bench: --events, --values, --batch_events, --raw_txn_rows must be >= 1\n");
    return 2;
  }
  std::filesystem::path dir = absl::GetFlag(FLAGS_dir);
  const bool temp = dir.empty();
  if (temp) dir = std::filesystem::temp_directory_path() / absl::StrCat("pendulum-store-bench-", getpid());
  std::filesystem::create_directories(dir);

  std::vector<double> raw, ing;
  for (int i = 0; i < repeat; ++i) {  // interleaved, so drift on a shared machine hits both
    raw.push_back(RawRate(dir / "raw.db", events, values, txn_rows));
    ing.push_back(IngestorRate(dir / "ingest.db", events, values, batch_events));
  }
  const double raw_m = Median(raw);
  const double ing_m = Median(ing);
  std::printf(
      "{\n  \"benchmark\": \"store_ingest\",\n  \"events\": %lld,\n  \"values_per_event\": %d,\n"
      "  \"points\": %lld,\n  \"batch_events\": %d,\n  \"raw_txn_rows\": %d,\n  \"synchronous\": \"%s\",\n"
      "  \"max_events_per_txn\": %d,\n  \"repeat\": %d,\n  \"raw_insert_rows_per_sec\": %lld,\n  \"raw_runs\": %s,\n"
      "  \"ingestor_points_per_sec\": %lld,\n  \"ingestor_runs\": %s,\n  \"ingestor_vs_raw\": %.3f\n}\n",
      static_cast<long long>(events), values, static_cast<long long>(events * values), batch_events, txn_rows,
      absl::GetFlag(FLAGS_synchronous).c_str(), absl::GetFlag(FLAGS_max_events_per_txn), repeat, static_cast<long long>(raw_m), Json(raw).c_str(),
      static_cast<long long>(ing_m), Json(ing).c_str(), ing_m / raw_m);
  if (temp) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace pendulum::store

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return pendulum::store::Main();
}
