#include "server/store/connection.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pendulum::store {

absl::Status SqliteStatus(int rc, sqlite3* db, std::string_view context) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return absl::OkStatus();
  std::string message = absl::StrCat(std::string(context), ": ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                                     " (sqlite code ", rc, ")");
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(absl::StrCat("database busy: ", message));
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return absl::AlreadyExistsError(message);
      }
      return absl::FailedPreconditionError(message);
    case SQLITE_READONLY:
      return absl::FailedPreconditionError(message);
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

Statement::Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}

Statement::~Statement() { sqlite3_finalize(stmt_); }

namespace {
absl::Status BindResult(int rc, sqlite3_stmt* stmt, int index) {
  if (rc == SQLITE_OK) return absl::OkStatus();
  return SqliteStatus(rc, sqlite3_db_handle(stmt), absl::StrCat("bind parameter ", index));
}
}  // namespace

Statement& Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (bind_status_.ok()) bind_status_ = BindResult(rc, stmt_, index);
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  int rc = sqlite3_bind_double(stmt_, index, value);
  if (bind_status_.ok()) bind_status_ = BindResult(rc, stmt_, index);
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (bind_status_.ok()) bind_status_ = BindResult(rc, stmt_, index);
  return *this;
}

Statement& Statement::BindBlob(int index, std::string_view bytes) {
  // An empty blob must still be a blob, not NULL: pass a non-null pointer.
  static const char kEmpty = 0;
  int rc = sqlite3_bind_blob64(stmt_, index, bytes.empty() ? &kEmpty : bytes.data(), bytes.size(),
                               SQLITE_TRANSIENT);
  if (bind_status_.ok()) bind_status_ = BindResult(rc, stmt_, index);
  return *this;
}

Statement& Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (bind_status_.ok()) bind_status_ = BindResult(rc, stmt_, index);
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_status_.ok()) return bind_status_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // Use the extended code so constraint kinds are distinguishable.
  sqlite3* db = sqlite3_db_handle(stmt_);
  return SqliteStatus(sqlite3_extended_errcode(db), db, sqlite3_sql(stmt_));
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_status_ = absl::OkStatus();
}

int64_t Statement::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::ColumnDouble(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Statement::ColumnText(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return text ? std::string(reinterpret_cast<const char*>(text), n) : std::string();
}
std::string Statement::ColumnBlob(int col) const {
  const void* blob = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return blob ? std::string(static_cast<const char*>(blob), n) : std::string();
}
bool Statement::ColumnIsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

void Connection::Closer::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

Connection::Connection(std::unique_ptr<sqlite3, Closer> db, std::string path)
    : db_(std::move(db)), path_(std::move(path)) {}

Connection::~Connection() {
  // Finalize cached statements before sqlite3_close_v2 runs in db_'s deleter.
  cache_.clear();
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& path,
                                                             const ConnectionOptions& options) {
  if (options.synchronous != "NORMAL" && options.synchronous != "FULL") {
    return absl::InvalidArgumentError(absl::StrCat("synchronous: got \"", options.synchronous,
                                                   "\", must be NORMAL or FULL"));
  }
  sqlite3* raw = nullptr;
  int flags = (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
              SQLITE_OPEN_NOMUTEX;  // one thread at a time per connection; no SQLite mutex needed
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<sqlite3, Closer> db(raw);
  if (rc != SQLITE_OK) {
    return SqliteStatus(rc, raw, absl::StrCat("open ", path));
  }
  sqlite3_extended_result_codes(raw, 1);
  std::unique_ptr<Connection> conn(new Connection(std::move(db), path));
  // The busy handler first, so that switching to WAL waits for other connections.
  conn->busy_timeout_ms_ = std::max(0, options.busy_timeout_ms);
  sqlite3_busy_handler(raw, &Connection::OnBusy, conn.get());
  if (!options.read_only) {
    absl::StatusOr<Statement*> wal = conn->Prepare("PRAGMA journal_mode=WAL");
    if (!wal.ok()) return wal.status();
    absl::StatusOr<bool> row = (*wal)->Step();
    if (!row.ok()) return row.status();
    std::string mode = *row ? (*wal)->ColumnText(0) : "";
    (*wal)->Reset();
    if (mode != "wal" && path != ":memory:") {
      return absl::FailedPreconditionError(
          absl::StrCat("open ", path, ": could not switch to WAL mode (journal_mode=", mode, ")"));
    }
  }
  absl::Status s = conn->Exec(absl::StrCat("PRAGMA foreign_keys=ON; PRAGMA synchronous=",
                                           options.synchronous, ";"));
  if (!s.ok()) return s;
  return conn;
}

int Connection::OnBusy(void* self, int attempts) {
  auto* conn = static_cast<Connection*>(self);
  const auto now = std::chrono::steady_clock::now();
  if (attempts == 0) conn->busy_since_ = now;
  if (now - conn->busy_since_ >= std::chrono::milliseconds(conn->busy_timeout_ms_)) return 0;
  // Short, fixed sleeps: a waiting writer gets the lock within ~0.5 ms of its release.
  std::this_thread::sleep_for(std::chrono::microseconds(500));
  return 1;
}

absl::Status Connection::Exec(std::string_view sql) {
  char* err = nullptr;
  std::string owned(sql);
  int rc = sqlite3_exec(db_.get(), owned.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string message = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  absl::Status status = SqliteStatus(sqlite3_extended_errcode(db_.get()), db_.get(), "exec");
  return absl::Status(status.code(), absl::StrCat("exec: ", message));
}

absl::StatusOr<Statement*> Connection::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    it->second->Reset();
    return it->second.get();
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteStatus(rc, db_.get(), absl::StrCat("prepare \"", sql, "\""));
  }
  auto owned = std::make_unique<Statement>(stmt);
  Statement* result = owned.get();
  cache_.emplace(sql, std::move(owned));
  return result;
}

void Connection::ResetStatements() {
  for (auto& [sql, stmt] : cache_) stmt->Reset();
}

int64_t Connection::Changes() const { return sqlite3_changes64(db_.get()); }
int64_t Connection::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_.get()); }

Transaction::Transaction(Connection* conn, bool immediate) : conn_(conn) {
  begin_status_ = conn_->Exec(immediate ? "BEGIN IMMEDIATE" : "BEGIN");
  if (!begin_status_.ok()) done_ = true;
}

Transaction::~Transaction() {
  if (!done_) {
    // Nothing to report to: the transaction is being abandoned on an error path.
    conn_->Exec("ROLLBACK").IgnoreError();
  }
}

absl::Status Transaction::Commit() {
  if (done_) return absl::FailedPreconditionError("transaction already finished");
  absl::Status s = conn_->Exec("COMMIT");
  if (s.ok()) done_ = true;
  // On failure the destructor rolls back.
  return s;
}

}  // namespace pendulum::store
