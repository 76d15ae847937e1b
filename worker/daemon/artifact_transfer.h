#pragma once
// ArtifactTransfer: moves checkpoint files between the worker's disk and the
// server's artifact store over WorkerService (UploadArtifact/DownloadArtifact),
// in chunks of at most 1 MiB, checking sha256 end to end.
// Thread-safe: every call uses its own gRPC context.
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pendulum/v1/worker_service.grpc.pb.h"

namespace pendulum::daemon {

// Makes a ClientContext carrying `authorization: Bearer <token>`.
std::unique_ptr<grpc::ClientContext> MakeAuthedContext(const std::string& token);

class ArtifactTransfer {
 public:
  static constexpr size_t kChunkBytes = 1u << 20;

  ArtifactTransfer(v1::WorkerService::StubInterface* stub, std::string token)
      : stub_(stub), token_(std::move(token)) {}

  // Uploads `path` as a checkpoint of (run, attempt) at `step`.
  absl::StatusOr<v1::ArtifactInfo> UploadCheckpoint(const std::string& path, int64_t run_id,
                                                    uint32_t attempt, int64_t step) {
    return Upload(path, run_id, attempt, step, "checkpoint", "");
  }
  // Uploads `path` as an artifact of `kind` ("checkpoint": no name; any other
  // kind: a named artifact, ArtifactSaved.name). The server refuses bad names
  // and files over its cap with INVALID_ARGUMENT.
  absl::StatusOr<v1::ArtifactInfo> Upload(const std::string& path, int64_t run_id, uint32_t attempt,
                                          int64_t step, const std::string& kind, const std::string& name);
  // Downloads artifact `id` to `dest` (written to a temp name, then renamed);
  // DATA_LOSS if the size or sha256 from the header does not match.
  absl::Status Download(const std::string& id, const std::string& dest);

 private:
  v1::WorkerService::StubInterface* stub_;  // not owned
  const std::string token_;
};

}  // namespace pendulum::daemon
