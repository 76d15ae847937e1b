#pragma once
// WorkerService (worker role only): Register, the Connect stream (one bidi
// reactor per worker, with a write queue so only one write is in flight),
// and chunked artifact upload/download into the artifact directory with a
// SHA-256 check. The Coordinator does the thinking; this file only moves
// messages. Threads: gRPC callback threads; reactors guard their own state.

#include <filesystem>

#include "pendulum/v1/worker_service.grpc.pb.h"
#include "server/api/artifact_send_reactor.h"  // kMaxArtifactChunkBytes
#include "server/api/coordinator.h"
#include "server/auth/authenticator.h"
#include "server/store/artifact_store.h"
#include "server/store/run_store.h"

namespace pendulum::api {

// Named (non-checkpoint) artifacts, e.g. an analysis run's tensors, are capped
// per file: the artifact directory is not a data lake.
inline constexpr int64_t kMaxNamedArtifactBytes = int64_t{256} << 20;

// Checks an upload header's kind/name/size pair: a checkpoint has no name; any
// other kind needs a relative name of plain path segments (no "..", no leading
// "/", at most 200 characters) and at most kMaxNamedArtifactBytes.
absl::Status ValidateArtifactHeader(const pendulum::v1::ArtifactHeader& header);

class WorkerServiceImpl final : public pendulum::v1::WorkerService::CallbackService {
 public:
  WorkerServiceImpl(const auth::Authenticator* authenticator, Coordinator* coordinator,
                    store::RunStore* runs, store::ArtifactStore* artifacts,
                    std::filesystem::path artifact_dir)
      : authenticator_(authenticator),
        coordinator_(coordinator),
        runs_(runs),
        artifacts_(artifacts),
        artifact_dir_(std::move(artifact_dir)) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* context,
                                     const pendulum::v1::RegisterRequest* request,
                                     pendulum::v1::RegisterResponse* response) override;
  grpc::ServerBidiReactor<pendulum::v1::WorkerMessage, pendulum::v1::ServerMessage>* Connect(
      grpc::CallbackServerContext* context) override;
  grpc::ServerReadReactor<pendulum::v1::ArtifactChunk>* UploadArtifact(
      grpc::CallbackServerContext* context, pendulum::v1::ArtifactInfo* response) override;
  grpc::ServerWriteReactor<pendulum::v1::ArtifactChunk>* DownloadArtifact(
      grpc::CallbackServerContext* context,
      const pendulum::v1::DownloadArtifactRequest* request) override;

 private:
  const auth::Authenticator* authenticator_;
  Coordinator* coordinator_;
  store::RunStore* runs_;
  store::ArtifactStore* artifacts_;
  const std::filesystem::path artifact_dir_;
};

}  // namespace pendulum::api
