#include "server/store/migrations.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/sha256.h"

namespace pendulum::store {
namespace embedded {
// Defined in the generated embedded_migrations.cc (migrations/CMakeLists.txt).
struct EmbeddedMigration {
  const char* file_name;
  const char* sql;
};
extern const EmbeddedMigration kMigrations[];
extern const int kMigrationCount;
}  // namespace embedded

namespace {

// Created inside each migration's transaction, so even the very first
// migration failing leaves a fresh file without any table.
constexpr char kCreateSchemaMigrations[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "  version INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  checksum TEXT NOT NULL,"
    "  applied_ms INTEGER NOT NULL)";

std::vector<Migration> LoadEmbedded() {
  std::vector<Migration> out;
  for (int i = 0; i < embedded::kMigrationCount; ++i) {
    Migration m;
    m.name = embedded::kMigrations[i].file_name;
    m.sql = embedded::kMigrations[i].sql;
    m.version = std::atoi(m.name.substr(0, 4).c_str());
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  return out;
}

absl::StatusOr<bool> TableExists(Connection* conn, const std::string& table) {
  PENDULUM_ASSIGN_OR_RETURN(Statement * stmt,
                            conn->Prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"));
  stmt->Bind(1, table);
  PENDULUM_ASSIGN_OR_RETURN(bool row, stmt->Step());
  stmt->Reset();
  return row;
}

}  // namespace

const std::vector<Migration>& EmbeddedMigrations() {
  static const std::vector<Migration>* migrations = new std::vector<Migration>(LoadEmbedded());
  return *migrations;
}

std::string MigrationChecksum(const Migration& migration) { return Sha256Hex(migration.sql); }

absl::StatusOr<int> SchemaVersion(Connection* conn) {
  PENDULUM_ASSIGN_OR_RETURN(bool exists, TableExists(conn, "schema_migrations"));
  if (!exists) return 0;
  PENDULUM_ASSIGN_OR_RETURN(Statement * stmt,
                            conn->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
  PENDULUM_ASSIGN_OR_RETURN(bool row, stmt->Step());
  int version = row ? static_cast<int>(stmt->ColumnInt(0)) : 0;
  stmt->Reset();
  return version;
}

absl::StatusOr<int> ApplyMigrations(Connection* conn, const std::vector<Migration>& migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("migrations must be numbered 1, 2, 3, … without gaps; entry ", i, " (",
                       migrations[i].name, ") has version ", migrations[i].version));
    }
  }
  PENDULUM_ASSIGN_OR_RETURN(int current, SchemaVersion(conn));
  if (current > static_cast<int>(migrations.size())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema version ", current, " is newer than this binary knows (",
        migrations.size(), "); use a newer pendulum-server"));
  }
  // Applied migrations must not have changed since (never edit a shipped one).
  if (current > 0) {
    PENDULUM_ASSIGN_OR_RETURN(Statement * stmt,
                              conn->Prepare("SELECT version, name, checksum FROM schema_migrations "
                                            "ORDER BY version"));
    while (true) {
      PENDULUM_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      int version = static_cast<int>(stmt->ColumnInt(0));
      if (version < 1 || version > static_cast<int>(migrations.size())) continue;
      const Migration& m = migrations[version - 1];
      if (stmt->ColumnText(2) != MigrationChecksum(m)) {
        std::string name = stmt->ColumnText(1);
        stmt->Reset();
        return absl::FailedPreconditionError(absl::StrCat(
            "migration ", name, " was changed after it was applied to this database; "
            "never edit a shipped migration, add the next number instead"));
      }
    }
    stmt->Reset();
  }
  for (int v = current + 1; v <= static_cast<int>(migrations.size()); ++v) {
    const Migration& m = migrations[v - 1];
    Transaction txn(conn);
    PENDULUM_RETURN_IF_ERROR(txn.status());
    // Another process may have migrated between our version check and the lock.
    PENDULUM_ASSIGN_OR_RETURN(int now, SchemaVersion(conn));
    if (now >= v) continue;  // txn rolls back (nothing was written)
    absl::Status applied = conn->Exec(m.sql);
    if (!applied.ok()) {
      return absl::Status(applied.code(), absl::StrCat("migration ", m.name, " failed, rolled back: ",
                                                       applied.message()));
    }
    PENDULUM_RETURN_IF_ERROR(conn->Exec(kCreateSchemaMigrations));
    PENDULUM_ASSIGN_OR_RETURN(Statement * insert,
                              conn->Prepare("INSERT INTO schema_migrations(version, name, checksum, "
                                            "applied_ms) VALUES (?, ?, ?, "
                                            "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))"));
    insert->Bind(1, static_cast<int64_t>(v)).Bind(2, m.name).Bind(3, MigrationChecksum(m));
    PENDULUM_RETURN_IF_ERROR(insert->Run());
    insert->Reset();
    PENDULUM_RETURN_IF_ERROR(txn.Commit());
  }
  return SchemaVersion(conn);
}

}  // namespace pendulum::store
