// Migrations: embedded, applied in order at open, recorded, atomic per migration.
#include "server/store/migrations.h"

#include <sqlite3.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/store/database.h"
#include "tests/unit/server/store/store_test_env.h"

namespace pendulum::store {
namespace {

using testing::StoreTest;

// Migration tests that start from a database already opened with the real list.
class MigratedDbTest : public StoreTest {};

// Everything that defines the schema, plus the migration records, as text.
std::string DumpSchema(const std::string& path) {
  auto conn = Connection::Open(path, {});
  EXPECT_TRUE(conn.ok()) << conn.status();
  std::string out;
  auto s = (*conn)->Prepare(
      "SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master ORDER BY type, name");
  EXPECT_TRUE(s.ok());
  while (*(*s)->Step()) out += (*s)->ColumnText(0) + "\n";
  (*s)->Reset();
  auto has = (*conn)->Prepare("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'");
  if (*(*has)->Step()) {
    (*has)->Reset();
    auto m = (*conn)->Prepare("SELECT version, name, checksum FROM schema_migrations ORDER BY version");
    while (*(*m)->Step()) out += "migration " + (*m)->ColumnText(0) + " " + (*m)->ColumnText(1) + " " + (*m)->ColumnText(2) + "\n";
    (*m)->Reset();
  }
  (*has)->Reset();
  return out;
}

DatabaseOptions Options(const std::string& path) {
  DatabaseOptions o;
  o.path = path;
  return o;
}

TEST(MigrationsTest, EmbeddedListIsNumberedFromOneWithoutGaps) {
  const auto& m = EmbeddedMigrations();
  ASSERT_FALSE(m.empty());
  for (size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ(m[i].version, static_cast<int>(i) + 1) << m[i].name;
    EXPECT_NE(m[i].sql.find("CREATE"), std::string::npos) << m[i].name;
  }
  EXPECT_EQ(m[0].name, "0001_initial.sql");
}

TEST_F(MigratedDbTest, FreshOpenAppliesEveryMigrationWithWalAndForeignKeys) {
  EXPECT_EQ(db_->schema_version(), static_cast<int>(EmbeddedMigrations().size()));
  auto lease = db_->Acquire();
  ASSERT_TRUE(lease.ok());
  auto s = (*lease)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(*(*s)->Step());
  EXPECT_EQ((*s)->ColumnText(0), "wal");
  s = (*lease)->Prepare("PRAGMA foreign_keys");
  ASSERT_TRUE(*(*s)->Step());
  EXPECT_EQ((*s)->ColumnInt(0), 1);
  s = (*lease)->Prepare("SELECT COUNT(*) FROM schema_migrations");
  ASSERT_TRUE(*(*s)->Step());
  EXPECT_EQ((*s)->ColumnInt(0), static_cast<int64_t>(EmbeddedMigrations().size()));
  for (const char* table : {"users", "tokens", "runs", "run_events", "workers", "sweeps", "metric_names",
                            "metrics", "attempt_progress", "layer_oscillation", "weight_snapshots",
                            "artifacts"}) {
    s = (*lease)->Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    (*s)->Bind(1, std::string(table));
    EXPECT_TRUE(*(*s)->Step()) << "missing table " << table;
  }
}

TEST_F(MigratedDbTest, ReopenIsIdempotent) {
  const std::string before = DumpSchema(path_);
  db_.reset();
  auto again = Database::Open(Options(path_));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->schema_version(), static_cast<int>(EmbeddedMigrations().size()));
  again->reset();
  EXPECT_EQ(DumpSchema(path_), before);
}

TEST_F(MigratedDbTest, FailingMigrationLeavesDatabaseExactlyAsBefore) {
  db_.reset();
  const std::string before = DumpSchema(path_);
  std::vector<Migration> broken = EmbeddedMigrations();
  // Creates a table, alters an existing one, inserts, then fails part-way.
  broken.push_back({static_cast<int>(broken.size()) + 1, "9999_broken.sql",
                    "CREATE TABLE half_done(x INTEGER);\n"
                    "ALTER TABLE runs ADD COLUMN half_done_col INTEGER;\n"
                    "INSERT INTO metric_names(name) VALUES ('half_done');\n"
                    "THIS IS NOT SQL;\n"});
  auto db = Database::OpenWithMigrationsForTest(Options(path_), broken);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("9999_broken.sql"), std::string::npos) << db.status();
  EXPECT_EQ(DumpSchema(path_), before);
  // No leftover row either.
  auto conn = Connection::Open(path_, {});
  auto s = (*conn)->Prepare("SELECT COUNT(*) FROM metric_names WHERE name = 'half_done'");
  ASSERT_TRUE(*(*s)->Step());
  EXPECT_EQ((*s)->ColumnInt(0), 0);
  (*s)->Reset();
  conn->reset();
  // The intact list still opens it.
  EXPECT_TRUE(Database::Open(Options(path_)).ok());
}

TEST(MigrationsTest, FailingFirstMigrationLeavesFreshFileWithoutTables) {
  auto dir = pendulum::testing::MakeTestTempDir();
  const std::string path = (dir / "fresh.db").string();
  std::vector<Migration> broken = {
      {1, "0001_broken.sql", "CREATE TABLE a(x); CREATE TABLE b(y REFERENCES nowhere_syntax((;"}};
  auto db = Database::OpenWithMigrationsForTest(Options(path), broken);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(DumpSchema(path), "");
  std::filesystem::remove_all(dir);
}

TEST_F(MigratedDbTest, LaterMigrationsApplyOnTopAndAreRecorded) {
  db_.reset();
  std::vector<Migration> more = EmbeddedMigrations();
  const int next = static_cast<int>(more.size()) + 1;
  more.push_back({next, "9998_extra.sql", "CREATE TABLE extra(x INTEGER);"});
  auto db = Database::OpenWithMigrationsForTest(Options(path_), more);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->schema_version(), next);
  EXPECT_NE(DumpSchema(path_).find("table extra"), std::string::npos);
  db->reset();
  // A binary that knows fewer migrations refuses the newer database.
  auto old = Database::Open(Options(path_));
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), absl::StatusCode::kFailedPrecondition) << old.status();
}

TEST_F(MigratedDbTest, EditedShippedMigrationIsDetected) {
  db_.reset();
  std::vector<Migration> edited = EmbeddedMigrations();
  edited[0].sql += "\n-- edited after shipping\n";
  auto db = Database::OpenWithMigrationsForTest(Options(path_), edited);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(db.status().message().find("0001_initial.sql"), std::string::npos) << db.status();
}

TEST(MigrationsTest, GapInNumberingIsRejected) {
  auto dir = pendulum::testing::MakeTestTempDir();
  std::vector<Migration> gap = {{1, "0001_a.sql", "CREATE TABLE a(x);"}, {3, "0003_c.sql", "CREATE TABLE c(x);"}};
  auto db = Database::OpenWithMigrationsForTest(Options((dir / "gap.db").string()), gap);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pendulum::store
