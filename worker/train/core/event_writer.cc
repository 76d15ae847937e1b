#include "worker/train/core/event_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "proto/io/event_stream.h"

namespace pendulum::train {

EventWriter::~EventWriter() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::unique_ptr<EventWriter>> EventWriter::OpenFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot create events file ", path, ": ", std::strerror(errno)));
  }
  return std::make_unique<EventWriter>(fd, /*owns_fd=*/true);
}

absl::Status EventWriter::Write(v1::TrainerEvent* event) {
  event->set_seq(++seq_);
  event->set_time_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
  absl::Status s = io::WriteDelimited(fd_, *event);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("writing trainer events: ", s.message()));
  return absl::OkStatus();
}

absl::Status EventWriter::EmitStarted(int64_t first_step, int64_t total_steps, const std::string& device) {
  v1::TrainerEvent e;
  auto* s = e.mutable_started();
  s->set_first_step(first_step);
  s->set_total_steps(total_steps);
  s->set_device(device);
  s->set_pid(::getpid());
  return Write(&e);
}

absl::Status EventWriter::EmitCheckpoint(int64_t step, const std::string& path, int64_t bytes,
                                         const std::string& sha256) {
  v1::TrainerEvent e;
  auto* c = e.mutable_checkpoint();
  c->set_step(step);
  c->set_path(path);
  c->set_bytes(bytes);
  c->set_sha256(sha256);
  return Write(&e);
}

absl::Status EventWriter::EmitArtifact(int64_t step, const std::string& name, const std::string& path,
                                       const std::string& kind) {
  if (name.empty() || kind.empty() || kind == "checkpoint") {
    return absl::InvalidArgumentError(absl::StrCat("artifact '", name, "' (kind '", kind,
                                                   "'): needs a name and a kind other than checkpoint"));
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("artifact '", name, "': ", path, ": ", ec.message()));
  PENDULUM_ASSIGN_OR_RETURN(std::string sha, Sha256FileHex(path));
  v1::TrainerEvent e;
  auto* a = e.mutable_artifact();
  a->set_step(step);
  a->set_name(name);
  // Absolute: the daemon resolves a relative path against the out dir, not
  // against this process's working directory.
  a->set_path(std::filesystem::absolute(path).string());
  a->set_bytes(static_cast<int64_t>(bytes));
  a->set_sha256(sha);
  a->set_kind(kind);
  return Write(&e);
}

absl::Status EventWriter::EmitFinished(bool ok, const std::string& message, int64_t final_step) {
  v1::TrainerEvent e;
  auto* f = e.mutable_finished();
  f->set_ok(ok);
  f->set_message(message);
  f->set_final_step(final_step);
  f->set_points_emitted(points_emitted_);
  return Write(&e);
}

absl::Status EventWriter::EmitScalars(int64_t step, double epoch,
                                      const std::map<std::string, double>& values) {
  if (values.empty()) return absl::OkStatus();
  v1::TrainerEvent e;
  auto* s = e.mutable_scalars();
  s->set_step(step);
  s->set_epoch(epoch);
  for (const auto& [name, value] : values) (*s->mutable_values())[name] = value;
  absl::Status st = Write(&e);
  // Counted only once written: points_emitted must equal what the reader can see.
  if (st.ok()) points_emitted_ += int64_t(values.size());
  return st;
}

absl::Status EventWriter::EmitOscillation(const v1::OscillationStats& stats) {
  v1::TrainerEvent e;
  *e.mutable_oscillation() = stats;
  return Write(&e);
}

absl::Status EventWriter::EmitSnapshot(const v1::WeightSnapshot& snapshot) {
  v1::TrainerEvent e;
  *e.mutable_snapshot() = snapshot;
  return Write(&e);
}

absl::Status EventWriter::EmitLog(const std::string& level, const std::string& text) {
  v1::TrainerEvent e;
  e.mutable_log()->set_level(level);
  e.mutable_log()->set_text(text);
  return Write(&e);
}

}  // namespace pendulum::train
