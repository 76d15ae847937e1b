#include "worker/daemon/artifact_transfer.h"


#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "grpcpp/grpcpp.h"

namespace pendulum::daemon {
namespace {

absl::Status FromGrpc(const grpc::Status& status, const std::string& what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}


}  // namespace

std::unique_ptr<grpc::ClientContext> MakeAuthedContext(const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

absl::StatusOr<v1::ArtifactInfo> ArtifactTransfer::Upload(const std::string& path, int64_t run_id,
                                                           uint32_t attempt, int64_t step,
                                                           const std::string& kind, const std::string& name) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(kind, " ", path, ": ", ec.message()));
  auto sha = Sha256FileHex(path);
  if (!sha.ok()) return sha.status();
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", kind, " ", path));

  auto ctx = MakeAuthedContext(token_);
  v1::ArtifactInfo info;
  auto writer = stub_->UploadArtifact(ctx.get(), &info);
  v1::ArtifactChunk chunk;
  auto* header = chunk.mutable_header();
  header->set_run_id(run_id);
  header->set_attempt(attempt);
  header->set_kind(kind);
  header->set_name(name);
  header->set_step(step);
  header->set_size(static_cast<int64_t>(size));
  header->set_sha256(*sha);
  std::string buf(kChunkBytes, '\0');
  bool first = true;
  bool write_ok = true;
  while (write_ok) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<size_t>(in.gcount());
    if (got == 0 && !first) break;
    chunk.set_data(buf.data(), got);
    write_ok = writer->Write(chunk);
    chunk.clear_header();
    first = false;
    if (got < buf.size()) break;
  }
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) return FromGrpc(status, absl::StrCat("uploading ", kind, " ", path));
  if (!write_ok) return absl::UnavailableError(absl::StrCat("upload stream of ", path, " broke"));
  return info;
}

absl::Status ArtifactTransfer::Download(const std::string& id, const std::string& dest) {
  auto ctx = MakeAuthedContext(token_);
  v1::DownloadArtifactRequest request;
  request.set_id(id);
  auto reader = stub_->DownloadArtifact(ctx.get(), request);
  const std::string tmp = dest + ".part";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return absl::UnavailableError(absl::StrCat("cannot create ", tmp));
  Sha256 sha;
  v1::ArtifactChunk chunk;
  v1::ArtifactHeader header;
  bool have_header = false;
  int64_t total = 0;
  while (reader->Read(&chunk)) {
    if (chunk.has_header()) {
      header = chunk.header();
      have_header = true;
    }
    sha.Update(chunk.data());
    out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    total += static_cast<int64_t>(chunk.data().size());
  }
  out.close();
  const grpc::Status status = reader->Finish();
  if (!status.ok()) {
    std::remove(tmp.c_str());
    return FromGrpc(status, absl::StrCat("downloading artifact ", id));
  }
  if (!out) return absl::UnavailableError(absl::StrCat("writing ", tmp));
  const std::string digest = sha.HexDigest();
  if (have_header && ((header.size() != 0 && header.size() != total) ||
                      (!header.sha256().empty() && header.sha256() != digest))) {
    std::remove(tmp.c_str());
    return absl::DataLossError(absl::StrCat("artifact ", id, ": got ", total, " bytes sha256 ",
                                            digest, ", header says ", header.size(), " bytes sha256 ",
                                            header.sha256()));
  }
  if (std::rename(tmp.c_str(), dest.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("renaming ", tmp, " to ", dest));
  }
  return absl::OkStatus();
}

}  // namespace pendulum::daemon
