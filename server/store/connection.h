#pragma once
// Connection: one open SQLite connection (RAII sqlite3*), its per-connection
// pragmas, and a cache of prepared statements keyed by SQL text.
// Threads: NOT thread-safe. A Connection is used by one thread at a time: the
// MetricIngestor's writer thread owns one; the stores borrow pooled ones from
// Database::Acquire() for the duration of one call.
// Errors: SQLITE_BUSY/SQLITE_LOCKED → UNAVAILABLE; constraint violations →
// ALREADY_EXISTS (unique/primary key) or FAILED_PRECONDITION (foreign key,
// check); everything else → INTERNAL. Messages carry SQLite's own text.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace pendulum::store {

// How the connection is opened. Defaults suit the server.
struct ConnectionOptions {
  // How long a statement waits for another connection's write lock before
  // failing with UNAVAILABLE. Milliseconds, >= 0. Default 5000.
  int busy_timeout_ms = 5000;
  // PRAGMA synchronous: "NORMAL" (default; in WAL mode a commit survives a
  // process crash, an OS crash may lose the last commits) or "FULL" (fsync on
  // every commit; survives power loss, slower).
  std::string synchronous = "NORMAL";
  // Open read-only (SQLITE_OPEN_READONLY). Default false.
  bool read_only = false;
};

// Maps an SQLite result code (and the connection's message) to a Status.
absl::Status SqliteStatus(int rc, sqlite3* db, std::string_view context);

// A prepared statement owned by a Connection's cache. Reset() and bindings are
// cleared automatically when a Statement is fetched from Connection::Prepare.
class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Bind parameters by 1-based index.
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, std::string_view text);  // copied (SQLITE_TRANSIENT)
  Statement& BindBlob(int index, std::string_view bytes);
  Statement& BindNull(int index);

  // Steps once. Returns true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion, for statements that return no rows.
  absl::Status Run();
  // Resets for re-execution and clears bindings.
  void Reset();

  int64_t ColumnInt(int col) const;
  double ColumnDouble(int col) const;
  std::string ColumnText(int col) const;
  std::string ColumnBlob(int col) const;
  bool ColumnIsNull(int col) const;

  sqlite3_stmt* raw() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;  // owned
  absl::Status bind_status_;  // first bind error, reported by Step/Run
};

class Connection {
 public:
  // Opens (creating if absent) the database file `path` and applies the
  // connection pragmas: journal_mode=WAL, foreign_keys=ON, busy_timeout,
  // synchronous. ":memory:" works but is private to this connection.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& path,
                                                          const ConnectionOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more ;-separated statements that return no rows.
  absl::Status Exec(std::string_view sql);

  // Returns the cached prepared statement for `sql` (prepared on first use),
  // reset and with bindings cleared. Owned by the Connection; valid until the
  // Connection is destroyed. Do not hold it across another Prepare of the same sql.
  absl::StatusOr<Statement*> Prepare(const std::string& sql);

  // Resets every cached statement, ending any read a half-stepped SELECT still
  // holds open (called when a pooled connection goes back to the pool).
  void ResetStatements();

  // Rows changed by the most recent INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  int64_t LastInsertRowId() const;

  sqlite3* raw() const { return db_.get(); }
  const std::string& path() const { return path_; }

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  Connection(std::unique_ptr<sqlite3, Closer> db, std::string path);
  // SQLite busy handler: retries every ~1 ms until busy_timeout_ms_ (SQLite's
  // own busy_timeout backs off to 100 ms sleeps, which would add that much
  // latency to a short write queued behind an ingest transaction).
  static int OnBusy(void* self, int attempts);

  // cache_ is declared after db_, so statements are finalized before the connection closes.
  std::unique_ptr<sqlite3, Closer> db_;
  absl::flat_hash_map<std::string, std::unique_ptr<Statement>> cache_;
  std::string path_;
  int busy_timeout_ms_ = 0;
  std::chrono::steady_clock::time_point busy_since_;  // start of the current wait
};

// RAII transaction. BEGIN IMMEDIATE on construction (takes the write lock up
// front, so two writers never deadlock on a read→write upgrade); ROLLBACK in
// the destructor unless Commit() succeeded.
class Transaction {
 public:
  // Starts the transaction; check status() before using it.
  explicit Transaction(Connection* conn, bool immediate = true);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const absl::Status& status() const { return begin_status_; }
  absl::Status Commit();

 private:
  Connection* conn_;
  absl::Status begin_status_;
  bool done_ = false;
};

}  // namespace pendulum::store
