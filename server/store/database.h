#pragma once
// Database: one SQLite file, migrated at Open(), plus a pool of connections
// that the stores borrow for one call at a time.
//
// Threads: thread-safe. Acquire() may be called from any thread; each returned
// lease is used by one thread. One mutex guards only the idle-connection list,
// never held during SQL. SQLite (WAL) serializes writers itself; readers never
// block the writer and see the last committed state.
//
// Ownership: the server owns one Database (unique_ptr) and passes raw pointers
// to RunStore, UserStore, TokenStore, WorkerStore, ArtifactStore,
// MetricIngestor and MetricReader, all of which must be destroyed first.
//
// Example:
//   DatabaseOptions options;
//   options.path = "/var/lib/pendulum/pendulum.db";
//   PENDULUM_ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open(options));
//   RunStore runs(db.get(), RealClock::Get());

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/store/connection.h"
#include "server/store/migrations.h"

namespace pendulum::store {

struct DatabaseOptions {
  // SQLite file; created (with its directory's -wal/-shm files) if absent. Required.
  std::string path;
  ConnectionOptions connection;
  // Idle connections kept open for reuse; more are opened on demand. Default 8.
  int max_idle_connections = 8;
};

class Database {
 public:
  // A borrowed connection; returned to the pool when the lease is destroyed.
  class Lease {
   public:
    Lease(Database* db, std::unique_ptr<Connection> conn);
    ~Lease();
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    Connection* operator->() const { return conn_.get(); }
    Connection* get() const { return conn_.get(); }

   private:
    Database* db_;
    std::unique_ptr<Connection> conn_;
  };

  // Opens the file and applies EmbeddedMigrations() (see ApplyMigrations).
  static absl::StatusOr<std::unique_ptr<Database>> Open(const DatabaseOptions& options);

  // Test-only: opens with `migrations` instead of the embedded list (e.g. a
  // deliberately broken one, to check that a failed migration changes nothing).
  static absl::StatusOr<std::unique_ptr<Database>> OpenWithMigrationsForTest(
      const DatabaseOptions& options, const std::vector<Migration>& migrations);

  // Borrows an idle connection or opens a new one. UNAVAILABLE/INTERNAL if the
  // file cannot be opened.
  absl::StatusOr<Lease> Acquire();

  // Opens a fresh connection the caller owns (the MetricIngestor's writer).
  absl::StatusOr<std::unique_ptr<Connection>> OpenConnection() const;

  // Schema version applied at Open().
  int schema_version() const { return schema_version_; }
  const DatabaseOptions& options() const { return options_; }

 private:
  Database(DatabaseOptions options, int schema_version);
  void Release(std::unique_ptr<Connection> conn);

  const DatabaseOptions options_;
  const int schema_version_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pendulum::store
