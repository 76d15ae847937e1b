#pragma once
// ArtifactStore: metadata of stored artifacts (checkpoints). The bytes live in
// the server's artifact directory; the caller writes and verifies the file,
// then records it here. Recording a checkpoint also moves the run's resume
// point forward (RunStore::GetResumePoint) when its step is newer.
// Threads: thread-safe (stateless; each call borrows a pooled connection).
// Errors: INVALID_ARGUMENT, NOT_FOUND (run or artifact), UNAVAILABLE.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "server/store/database.h"

namespace pendulum::store {

struct Artifact {
  std::string id;          // assigned by Add(); decimal string
  int64_t run_id = 0;
  uint32_t attempt = 0;
  int64_t step = 0;
  std::string kind;        // "checkpoint", "analysis", …
  std::string name;        // named artifacts (ArtifactSaved.name); "" for checkpoints
  std::string path;        // file path (absolute or relative to the artifact dir)
  int64_t size = 0;        // bytes
  std::string sha256;      // hex
  int64_t created_unix_ms = 0;
};

class ArtifactStore {
 public:
  // `db` and `clock` must outlive the ArtifactStore.
  ArtifactStore(Database* db, const Clock* clock);

  // Records `artifact` (id and created are assigned) and, for kind
  // "checkpoint", sets the run's resume point if step >= the current one, in
  // the same transaction. Returns the stored record.
  absl::StatusOr<Artifact> Add(const Artifact& artifact);

  absl::StatusOr<Artifact> Get(const std::string& id);
  // Artifacts of a run, oldest first.
  absl::StatusOr<std::vector<Artifact>> ListForRun(int64_t run_id);
  // The newest artifact of the run called `name` (a re-upload replaces an
  // older one); NOT_FOUND naming the run's artifact names if there is none.
  absl::StatusOr<Artifact> GetByName(int64_t run_id, const std::string& name);
  // The checkpoint with the highest step (any attempt); nullopt if none.
  absl::StatusOr<std::optional<Artifact>> LatestCheckpoint(int64_t run_id);

 private:
  Database* db_;
  const Clock* clock_;
};

}  // namespace pendulum::store
