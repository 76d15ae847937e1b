#include "server/api/worker_service_impl.h"


#include <deque>
#include <fstream>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "server/api/artifact_send_reactor.h"
#include "server/api/call_auth.h"
#include "server/api/status_util.h"

namespace pendulum::api {
namespace {

using pendulum::v1::ArtifactChunk;
using pendulum::v1::ServerMessage;
using pendulum::v1::WorkerMessage;

constexpr char kService[] = "/pendulum.v1.WorkerService/";


// One worker's Connect stream. Reads are handled one at a time (the next
// read starts after the Coordinator took the message); writes queue here and
// go out one at a time. Deletes itself in OnDone after telling the
// Coordinator the stream is gone.
class WorkerStream final : public grpc::ServerBidiReactor<WorkerMessage, ServerMessage>,
                           public WorkerChannel {
 public:
  WorkerStream(Coordinator* coordinator, absl::Status auth) : coordinator_(coordinator) {
    if (!auth.ok()) {
      Close(auth);
      return;
    }
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the worker half-closed or the stream broke
      Close(absl::OkStatus());
      return;
    }
    if (worker_id_.empty()) {
      if (!in_.has_hello()) {
        Close(absl::FailedPreconditionError("the first message on Connect must be hello"));
        return;
      }
      absl::Status hello = coordinator_->OnHello(in_.hello(), this);
      if (!hello.ok()) {
        Close(hello);
        return;
      }
      worker_id_ = in_.hello().worker_id();
    } else {
      switch (in_.msg_case()) {
        case WorkerMessage::kHeartbeat:
          coordinator_->OnHeartbeat(worker_id_, in_.heartbeat());
          break;
        case WorkerMessage::kEvents:
          coordinator_->OnRunEvents(worker_id_, std::move(*in_.mutable_events()));
          break;
        case WorkerMessage::kStatus:
          coordinator_->OnRunStatus(worker_id_, in_.status());
          break;
        case WorkerMessage::kHello:
          Close(absl::FailedPreconditionError("hello sent twice on one Connect stream"));
          return;
        default:
          break;  // an empty message keeps the stream alive and nothing else
      }
    }
    in_.Clear();
    StartRead(&in_);
  }

  void Send(const ServerMessage& message) override {
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    out_.push_back(message);
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }

  void Close(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    finishing_ = true;
    if (writing_) {
      close_status_ = status;  // finished after the write in flight completes
      return;
    }
    Finish(ToGrpcStatus(status));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    out_.pop_front();
    if (ok && !finishing_ && !out_.empty()) {
      StartWrite(&out_.front());
      return;
    }
    writing_ = false;
    if (!ok && !finishing_) {
      finishing_ = true;
      Finish(ToGrpcStatus(absl::UnavailableError("write to worker failed")));
      return;
    }
    if (finishing_) Finish(ToGrpcStatus(close_status_));
  }

  void OnDone() override {
    if (!worker_id_.empty()) coordinator_->OnDisconnect(worker_id_, this);
    delete this;
  }

 private:
  Coordinator* const coordinator_;
  WorkerMessage in_;           // only touched by the read callbacks (one at a time)
  std::string worker_id_;      // set by the first (hello) read

  absl::Mutex mu_;
  std::deque<ServerMessage> out_ ABSL_GUARDED_BY(mu_);  // front is in flight while writing_
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
};

// Receives one artifact: header on the first chunk, ≤ 1 MiB of data per
// chunk, written to a temp file, verified (size, sha256), renamed into place
// and recorded in the ArtifactStore.
class UploadReactor final : public grpc::ServerReadReactor<ArtifactChunk> {
 public:
  UploadReactor(absl::Status auth, store::RunStore* runs, store::ArtifactStore* artifacts,
                std::filesystem::path dir, pendulum::v1::ArtifactInfo* response)
      : runs_(runs), artifacts_(artifacts), dir_(std::move(dir)), response_(response) {
    if (!auth.ok()) {
      Done(auth);
      return;
    }
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    absl::Status s = ok ? Take() : Complete();
    if (!s.ok()) {
      Done(s);
      return;
    }
    if (ok) {
      StartRead(&chunk_);
    } else {
      Done(absl::OkStatus());
    }
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Take() {
    if (!have_header_) {
      if (!chunk_.has_header()) {
        return absl::InvalidArgumentError("header: the first chunk must carry the artifact header");
      }
      header_ = chunk_.header();
      if (header_.run_id() <= 0) {
        return absl::InvalidArgumentError(absl::StrCat("header.run_id: got ", header_.run_id(), ", must be >= 1"));
      }
      if (header_.kind().empty() || header_.kind().find_first_of("/\\. ") != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("header.kind: got '", header_.kind(), "', must be a plain word like 'checkpoint'"));
      }
      if (header_.size() < 0) return absl::InvalidArgumentError("header.size: must be >= 0");
      PENDULUM_RETURN_IF_ERROR(ValidateArtifactHeader(header_));
      if (header_.sha256().size() != 64) {
        return absl::InvalidArgumentError("header.sha256: must be 64 hex characters");
      }
      PENDULUM_RETURN_IF_ERROR(runs_->GetRun(header_.run_id()).status());
      std::filesystem::path run_dir = dir_ / absl::StrCat("run-", header_.run_id());
      std::error_code ec;
      std::filesystem::create_directories(run_dir, ec);
      if (ec) return absl::InternalError(absl::StrCat("creating ", run_dir.string(), ": ", ec.message()));
      std::random_device rd;
      final_path_ = run_dir / absl::StrCat(header_.kind(), "-a", header_.attempt(), "-s", header_.step(),
                                          "-", absl::string_view(header_.sha256()).substr(0, 16));
      temp_path_ = final_path_;
      temp_path_ += absl::StrCat(".part", rd());
      out_.open(temp_path_, std::ios::binary | std::ios::trunc);
      if (!out_) return absl::InternalError(absl::StrCat("cannot write ", temp_path_.string()));
      have_header_ = true;
    } else if (chunk_.has_header()) {
      return absl::InvalidArgumentError("header: only the first chunk may carry a header");
    }
    if (chunk_.data().size() > kMaxArtifactChunkBytes) {
      return absl::InvalidArgumentError(absl::StrCat("data: chunk of ", chunk_.data().size(),
                                                     " bytes, at most ", kMaxArtifactChunkBytes));
    }
    received_ += chunk_.data().size();
    if (received_ > header_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("data: more than header.size = ", header_.size(), " bytes"));
    }
    sha_.Update(chunk_.data());
    out_.write(chunk_.data().data(), chunk_.data().size());
    if (!out_) return absl::InternalError(absl::StrCat("writing ", temp_path_.string()));
    chunk_.Clear();
    return absl::OkStatus();
  }

  absl::Status Complete() {
    if (!have_header_) return absl::InvalidArgumentError("header: no chunks received");
    out_.close();
    if (received_ != header_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("data: received ", received_, " bytes, header.size says ", header_.size()));
    }
    std::string digest = sha_.HexDigest();
    if (digest != absl::AsciiStrToLower(header_.sha256())) {
      return absl::DataLossError(absl::StrCat("sha256 mismatch: header says ", header_.sha256(),
                                              ", received data hashes to ", digest));
    }
    std::error_code ec;
    std::filesystem::rename(temp_path_, final_path_, ec);
    if (ec) return absl::InternalError(absl::StrCat("renaming into ", final_path_.string(), ": ", ec.message()));
    store::Artifact artifact;
    artifact.run_id = header_.run_id();
    artifact.attempt = header_.attempt();
    artifact.step = header_.step();
    artifact.kind = header_.kind();
    artifact.name = header_.name();
    artifact.path = final_path_.string();
    artifact.size = header_.size();
    artifact.sha256 = digest;
    PENDULUM_ASSIGN_OR_RETURN(store::Artifact stored, artifacts_->Add(artifact));
    response_->set_id(stored.id);
    response_->set_run_id(stored.run_id);
    response_->set_step(stored.step);
    response_->set_size(stored.size);
    response_->set_sha256(stored.sha256);
    temp_path_.clear();
    return absl::OkStatus();
  }

  void Done(const absl::Status& status) {
    if (finished_) return;
    finished_ = true;
    if (!temp_path_.empty()) {
      out_.close();
      std::error_code ec;
      std::filesystem::remove(temp_path_, ec);  // best effort: a partial upload is garbage
    }
    Finish(ToGrpcStatus(status));
  }

  store::RunStore* runs_;
  store::ArtifactStore* artifacts_;
  const std::filesystem::path dir_;
  pendulum::v1::ArtifactInfo* response_;
  ArtifactChunk chunk_;
  bool have_header_ = false;
  bool finished_ = false;
  pendulum::v1::ArtifactHeader header_;
  std::filesystem::path final_path_;
  std::filesystem::path temp_path_;
  std::ofstream out_;
  int64_t received_ = 0;
  Sha256 sha_;
};

}  // namespace

absl::Status ValidateArtifactHeader(const pendulum::v1::ArtifactHeader& header) {
  const std::string& name = header.name();
  if (header.kind() == "checkpoint") {
    if (!name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("header.name: got '", name, "', a checkpoint has no name (use another kind)"));
    }
    return absl::OkStatus();
  }
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("header.name: an artifact of kind '", header.kind(), "' needs a name"));
  }
  bool bad = name.size() > 200 || name.front() == '/' || name.back() == '/';
  for (char c : name) bad |= static_cast<unsigned char>(c) < 0x20 || c == '\\' || c == 0x7f;
  for (absl::string_view part : absl::StrSplit(name, '/')) bad |= part.empty() || part == "." || part == "..";
  if (bad) {
    return absl::InvalidArgumentError(absl::StrCat(
        "header.name: got '", name, "', must be a relative path of plain segments (no '..', no leading or "
        "doubled '/', no control characters), at most 200 characters"));
  }
  if (header.size() > kMaxNamedArtifactBytes) {
    return absl::InvalidArgumentError(absl::StrCat("header.size: artifact '", name, "' has ", header.size(),
                                                   " bytes, more than the cap of ", kMaxNamedArtifactBytes,
                                                   " bytes for named artifacts"));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Register(grpc::CallbackServerContext* context,
                                                      const pendulum::v1::RegisterRequest* request,
                                                      pendulum::v1::RegisterResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status s = [&]() -> absl::Status {
    PENDULUM_RETURN_IF_ERROR(
        AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "Register")).status());
    PENDULUM_ASSIGN_OR_RETURN(*response, coordinator_->Register(*request));
    return absl::OkStatus();
  }();
  reactor->Finish(ToGrpcStatus(s));
  return reactor;
}

grpc::ServerBidiReactor<WorkerMessage, ServerMessage>* WorkerServiceImpl::Connect(
    grpc::CallbackServerContext* context) {
  return new WorkerStream(
      coordinator_, AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "Connect")).status());
}

grpc::ServerReadReactor<ArtifactChunk>* WorkerServiceImpl::UploadArtifact(
    grpc::CallbackServerContext* context, pendulum::v1::ArtifactInfo* response) {
  return new UploadReactor(
      AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "UploadArtifact")).status(), runs_,
      artifacts_, artifact_dir_, response);
}

grpc::ServerWriteReactor<ArtifactChunk>* WorkerServiceImpl::DownloadArtifact(
    grpc::CallbackServerContext* context, const pendulum::v1::DownloadArtifactRequest* request) {
  absl::Status auth = AuthorizeCall(*authenticator_, context, absl::StrCat(kService, "DownloadArtifact")).status();
  absl::StatusOr<store::Artifact> artifact = auth.ok() ? artifacts_->Get(request->id())
                                                       : absl::StatusOr<store::Artifact>(auth);
  if (auth.ok() && absl::IsNotFound(artifact.status())) {
    artifact = absl::NotFoundError(absl::StrCat("artifact '", request->id(), "' not found"));
  }
  ArtifactChunk first;
  if (artifact.ok()) {
    auto* header = first.mutable_header();
    header->set_run_id(artifact->run_id);
    header->set_attempt(artifact->attempt);
    header->set_kind(artifact->kind);
    header->set_name(artifact->name);
    header->set_step(artifact->step);
    header->set_size(artifact->size);
    header->set_sha256(artifact->sha256);
  }
  return new ArtifactSendReactor<ArtifactChunk>(artifact, std::move(first));
}

}  // namespace pendulum::api
