#include "server/store/artifact_store.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace pendulum::store {

namespace {

constexpr char kColumns[] = "id, run_id, attempt, step, kind, path, size, sha256, created_ms, name";

Artifact RowToArtifact(const Statement& s) {
  Artifact a;
  a.id = absl::StrCat(s.ColumnInt(0));
  a.run_id = s.ColumnInt(1);
  a.attempt = static_cast<uint32_t>(s.ColumnInt(2));
  a.step = s.ColumnInt(3);
  a.kind = s.ColumnText(4);
  a.path = s.ColumnText(5);
  a.size = s.ColumnInt(6);
  a.sha256 = s.ColumnText(7);
  a.created_unix_ms = s.ColumnInt(8);
  a.name = s.ColumnText(9);
  return a;
}

absl::StatusOr<std::vector<Artifact>> Collect(Statement* s) {
  std::vector<Artifact> out;
  while (true) {
    PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    out.push_back(RowToArtifact(*s));
  }
  s->Reset();
  return out;
}

}  // namespace

ArtifactStore::ArtifactStore(Database* db, const Clock* clock) : db_(db), clock_(clock) {}

absl::StatusOr<Artifact> ArtifactStore::Add(const Artifact& artifact) {
  if (artifact.kind.empty()) return absl::InvalidArgumentError("kind: must not be empty");
  if (artifact.path.empty()) return absl::InvalidArgumentError("path: must not be empty");
  if (artifact.size < 0) {
    return absl::InvalidArgumentError(absl::StrCat("size: got ", artifact.size, ", must be >= 0"));
  }
  Artifact stored = artifact;
  stored.created_unix_ms = clock_->NowUnixMillis();
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  Transaction txn(conn.get());
  PENDULUM_RETURN_IF_ERROR(txn.status());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare("INSERT INTO artifacts(run_id, attempt, step, kind, path, size, sha256, created_ms, name) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  s->Bind(1, artifact.run_id)
      .Bind(2, static_cast<int64_t>(artifact.attempt))
      .Bind(3, artifact.step)
      .Bind(4, artifact.kind)
      .Bind(5, artifact.path)
      .Bind(6, artifact.size)
      .Bind(7, artifact.sha256)
      .Bind(8, stored.created_unix_ms)
      .Bind(9, artifact.name);
  absl::Status st = s->Run();
  if (absl::IsFailedPrecondition(st)) {
    return absl::NotFoundError(absl::StrCat("run ", artifact.run_id, " not found"));
  }
  PENDULUM_RETURN_IF_ERROR(st);
  stored.id = absl::StrCat(conn->LastInsertRowId());
  if (artifact.kind == "checkpoint") {
    // The newest checkpoint (highest step) is where a requeued run resumes.
    PENDULUM_ASSIGN_OR_RETURN(
        Statement * u,
        conn->Prepare("UPDATE runs SET resume_artifact_id = ?, resume_step = ? "
                      "WHERE id = ? AND (resume_artifact_id = '' OR resume_step <= ?)"));
    u->Bind(1, stored.id).Bind(2, artifact.step).Bind(3, artifact.run_id).Bind(4, artifact.step);
    PENDULUM_RETURN_IF_ERROR(u->Run());
  }
  PENDULUM_RETURN_IF_ERROR(txn.Commit());
  return stored;
}

absl::StatusOr<Artifact> ArtifactStore::Get(const std::string& id) {
  int64_t num = 0;
  if (!absl::SimpleAtoi(id, &num) || num <= 0) {
    return absl::NotFoundError(absl::StrCat("artifact \"", id, "\" not found"));
  }
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(Statement * s,
                            conn->Prepare(absl::StrCat("SELECT ", kColumns, " FROM artifacts WHERE id = ?")));
  s->Bind(1, num);
  PENDULUM_ASSIGN_OR_RETURN(std::vector<Artifact> found, Collect(s));
  if (found.empty()) return absl::NotFoundError(absl::StrCat("artifact \"", id, "\" not found"));
  return std::move(found.front());
}

absl::StatusOr<std::vector<Artifact>> ArtifactStore::ListForRun(int64_t run_id) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare(absl::StrCat("SELECT ", kColumns, " FROM artifacts WHERE run_id = ? ORDER BY id")));
  s->Bind(1, run_id);
  return Collect(s);
}

absl::StatusOr<Artifact> ArtifactStore::GetByName(int64_t run_id, const std::string& name) {
  PENDULUM_ASSIGN_OR_RETURN(std::vector<Artifact> all, ListForRun(run_id));
  std::string names;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (!name.empty() && it->name == name) return std::move(*it);
  }
  for (const Artifact& a : all) {
    if (!a.name.empty() && names.find(absl::StrCat("'", a.name, "'")) == std::string::npos) {
      absl::StrAppend(&names, names.empty() ? "" : ", ", "'", a.name, "'");
    }
  }
  return absl::NotFoundError(absl::StrCat("run ", run_id, " has no artifact named '", name, "'; it has ",
                                          names.empty() ? "no named artifacts" : names));
}

absl::StatusOr<std::optional<Artifact>> ArtifactStore::LatestCheckpoint(int64_t run_id) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare(absl::StrCat("SELECT ", kColumns,
                                 " FROM artifacts WHERE run_id = ? AND kind = 'checkpoint' "
                                 "ORDER BY step DESC, id DESC LIMIT 1")));
  s->Bind(1, run_id);
  PENDULUM_ASSIGN_OR_RETURN(std::vector<Artifact> found, Collect(s));
  if (found.empty()) return std::optional<Artifact>();
  return std::optional<Artifact>(std::move(found.front()));
}

}  // namespace pendulum::store
