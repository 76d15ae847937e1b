#pragma once
// ArtifactSendReactor<Message>: streams one stored artifact file to a client,
// for both RunService.FetchArtifact (ArtifactData, the record in `info`) and
// WorkerService.DownloadArtifact (ArtifactChunk, the record in `header`).
// The first message is the caller's (its record filled in) plus the first
// piece of the file; each later message carries only data, at most
// kMaxArtifactChunkBytes. An empty file still sends the record. One write in
// flight; the reactor deletes itself when gRPC is done with it.

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "server/api/status_util.h"
#include "server/store/artifact_store.h"

namespace pendulum::api {

inline constexpr size_t kMaxArtifactChunkBytes = 1 << 20;

template <typename Message>
class ArtifactSendReactor final : public grpc::ServerWriteReactor<Message> {
 public:
  // Finishes at once with `artifact`'s error (or DATA_LOSS when its file is
  // gone); otherwise sends `first`, then the rest of the file.
  ArtifactSendReactor(const absl::StatusOr<store::Artifact>& artifact, Message first)
      : message_(std::move(first)) {
    absl::Status s = artifact.status();
    if (s.ok()) {
      in_.open(artifact->path, std::ios::binary);
      remaining_ = artifact->size;
      if (!in_) s = absl::DataLossError(absl::StrCat("artifact '", artifact->id, "': file ", artifact->path, " is missing"));
    }
    if (!s.ok()) {
      this->Finish(ToGrpcStatus(s));
      return;
    }
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(ToGrpcStatus(absl::CancelledError("client went away")));
      return;
    }
    Next();
  }

  void OnDone() override { delete this; }

 private:
  void Next() {
    if (sent_first_) {
      if (remaining_ <= 0) {
        this->Finish(grpc::Status::OK);
        return;
      }
      message_.Clear();  // later messages carry data only
    }
    std::string* data = message_.mutable_data();
    data->resize(static_cast<size_t>(std::min<int64_t>(remaining_, kMaxArtifactChunkBytes)));
    in_.read(data->data(), static_cast<std::streamsize>(data->size()));
    if (static_cast<size_t>(in_.gcount()) != data->size()) {
      this->Finish(ToGrpcStatus(absl::DataLossError("artifact file is shorter than recorded")));
      return;
    }
    remaining_ -= static_cast<int64_t>(data->size());
    sent_first_ = true;
    this->StartWrite(&message_);
  }

  std::ifstream in_;
  Message message_;
  int64_t remaining_ = 0;
  bool sent_first_ = false;
};

}  // namespace pendulum::api
