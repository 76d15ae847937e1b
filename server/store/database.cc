#include "server/store/database.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace pendulum::store {

Database::Lease::Lease(Database* db, std::unique_ptr<Connection> conn)
    : db_(db), conn_(std::move(conn)) {}

Database::Lease::~Lease() {
  if (conn_) db_->Release(std::move(conn_));
}

Database::Database(DatabaseOptions options, int schema_version)
    : options_(std::move(options)), schema_version_(schema_version) {}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const DatabaseOptions& options) {
  return OpenWithMigrationsForTest(options, EmbeddedMigrations());
}

absl::StatusOr<std::unique_ptr<Database>> Database::OpenWithMigrationsForTest(
    const DatabaseOptions& options, const std::vector<Migration>& migrations) {
  if (options.path.empty()) return absl::InvalidArgumentError("database path: must not be empty");
  PENDULUM_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                            Connection::Open(options.path, options.connection));
  absl::StatusOr<int> version = ApplyMigrations(conn.get(), migrations);
  if (!version.ok()) {
    return absl::Status(version.status().code(),
                        absl::StrCat(options.path, ": ", version.status().message()));
  }
  std::unique_ptr<Database> db(new Database(options, *version));
  // Keep the migrating connection as the first pooled one.
  db->Release(std::move(conn));
  return db;
}

absl::StatusOr<std::unique_ptr<Connection>> Database::OpenConnection() const {
  return Connection::Open(options_.path, options_.connection);
}

absl::StatusOr<Database::Lease> Database::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
  }
  // Opening can wait on the file; never under the lock.
  PENDULUM_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenConnection());
  return Lease(this, std::move(conn));
}

void Database::Release(std::unique_ptr<Connection> conn) {
  // A half-stepped SELECT would pin an old WAL snapshot while idle.
  conn->ResetStatements();
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(idle_.size()) < options_.max_idle_connections) {
    idle_.push_back(std::move(conn));
  }
  // else: conn closes here; closing is quick (nothing pending after the reset).
}

}  // namespace pendulum::store
