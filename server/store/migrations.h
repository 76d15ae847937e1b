#pragma once
// The SQL schema migrations (migrations/NNNN_name.sql), embedded into the
// library at build time, and the code that applies them.
// Threads: EmbeddedMigrations() is immutable and safe from any thread;
// ApplyMigrations uses the given connection (one thread at a time).

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/store/connection.h"

namespace pendulum::store {

struct Migration {
  int version = 0;    // NNNN from the file name; 1, 2, 3, … without gaps
  std::string name;   // file name, e.g. "0001_initial.sql"
  std::string sql;    // the file's text
};

// The migrations compiled into this binary, in version order.
const std::vector<Migration>& EmbeddedMigrations();

// Hex SHA-256 of a migration's SQL, recorded in schema_migrations.checksum so
// that editing a shipped migration is detected.
std::string MigrationChecksum(const Migration& migration);

// Applies, in version order, every migration not yet recorded in
// schema_migrations. Each runs in its own transaction together with its
// schema_migrations row: a migration that fails is rolled back whole and leaves
// the database exactly as it was before that migration (earlier ones stay).
// Returns the schema version afterwards.
// Errors: INVALID_ARGUMENT (list not numbered 1..n), FAILED_PRECONDITION (the
// database has a newer version than the list, or an applied migration's SQL
// changed), INTERNAL with the version and SQLite's message when one fails.
absl::StatusOr<int> ApplyMigrations(Connection* conn, const std::vector<Migration>& migrations);

// Highest applied version (0 for a fresh file).
absl::StatusOr<int> SchemaVersion(Connection* conn);

}  // namespace pendulum::store
