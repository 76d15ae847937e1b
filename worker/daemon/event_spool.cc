#include "worker/daemon/event_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "proto/io/event_stream.h"

namespace pendulum::daemon {
namespace {

namespace fs = std::filesystem;

absl::Status ErrnoError(const std::string& what, const fs::path& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path.string(), ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, const char* data, size_t size, const fs::path& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("writing", path);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("opening directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("fsync of directory", dir);
  return absl::OkStatus();
}

std::string SegmentName(uint64_t first_seq) {
  return absl::StrFormat("seg-%020d.log", first_seq);
}

// Splits framed records; returns bytes consumed by whole, parseable records.
size_t ParseRecords(const std::string& data, std::vector<v1::TrainerEvent>* events) {
  size_t consumed = 0;
  // ParseDelimitedEvents stops at the first torn/corrupt record and reports
  // how far it got; for a spool file both mean "cut the tail here".
  io::ParseDelimitedEvents(data, events, &consumed).IgnoreError();
  return consumed;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventSpool>> EventSpool::Open(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("creating spool dir ", dir.string(), ": ", ec.message()));
  std::unique_ptr<EventSpool> spool(new EventSpool(dir));
  PENDULUM_RETURN_IF_ERROR(spool->Recover());
  return spool;
}

EventSpool::~EventSpool() {
  if (write_fd_ >= 0) ::close(write_fd_);
  if (acked_fd_ >= 0) ::close(acked_fd_);
}

absl::Status EventSpool::Recover() {
  const fs::path acked_path = dir_ / "acked";
  acked_fd_ = ::open(acked_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (acked_fd_ < 0) return ErrnoError("opening", acked_path);
  uint64_t acked = 0;
  unsigned char buf[8];
  if (::pread(acked_fd_, buf, 8, 0) == 8) {
    for (int i = 7; i >= 0; --i) acked = (acked << 8) | buf[i];
  }

  std::vector<Segment> segments;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("seg-", 0) != 0 || name.size() != 4 + 20 + 4) continue;
    segments.push_back({std::stoull(name.substr(4, 20)), entry.path()});
  }
  std::sort(segments.begin(), segments.end(),
            [](const Segment& a, const Segment& b) { return a.first_seq < b.first_seq; });

  std::deque<Entry> pending;
  uint64_t pending_bytes = 0;
  uint64_t last_seq = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    std::ifstream in(segments[i].path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string data = ss.str();
    std::vector<v1::TrainerEvent> events;
    const size_t consumed = ParseRecords(data, &events);
    if (consumed < data.size()) {
      // A crash mid-append leaves a torn record; it was never fsynced, hence
      // never forwarded, so cutting it loses nothing that left this machine.
      PENDULUM_LOG(WARNING) << "spool " << segments[i].path.string() << ": dropping "
                            << data.size() - consumed << " torn/corrupt tail bytes";
      recovery_.torn_bytes_dropped += data.size() - consumed;
      if (::truncate(segments[i].path.c_str(), static_cast<off_t>(consumed)) != 0) {
        return ErrnoError("truncating torn spool segment", segments[i].path);
      }
      if (i + 1 < segments.size()) {
        // Corruption inside an older segment: later segments no longer follow
        // without a gap, so they cannot be trusted to continue the sequence.
        return absl::DataLossError(absl::StrCat("spool segment ", segments[i].path.string(),
                                                " is corrupt before its end"));
      }
    }
    for (auto& event : events) {
      if (last_seq != 0 && event.seq() != last_seq + 1) {
        return absl::DataLossError(absl::StrCat("spool ", dir_.string(), ": seq ", event.seq(),
                                                " follows ", last_seq));
      }
      last_seq = event.seq();
      if (event.seq() > acked) {
        const size_t bytes = event.ByteSizeLong();
        pending_bytes += bytes;
        pending.push_back({std::move(event), bytes});
      }
    }
  }
  if (acked > last_seq && !segments.empty() && last_seq != 0) {
    PENDULUM_LOG(WARNING) << "spool " << dir_.string() << ": ack mark " << acked
                          << " beyond last spooled seq " << last_seq;
  }
  last_seq = std::max(last_seq, acked);
  recovery_.events_recovered = pending.size();

  if (!segments.empty()) {
    const Segment& tail = segments.back();
    write_fd_ = ::open(tail.path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (write_fd_ < 0) return ErrnoError("opening", tail.path);
    struct stat st;
    ::fstat(write_fd_, &st);
    write_segment_bytes_ = static_cast<uint64_t>(st.st_size);
  }
  {
    absl::MutexLock lock(&mu_);
    pending_ = std::move(pending);
    pending_bytes_ = pending_bytes;
    segments_ = std::move(segments);
    acked_seq_ = acked;
    last_seq_ = last_seq;
  }
  // Drop segments already fully acked (a crash may have come before unlink).
  return Ack(acked);
}

absl::Status EventSpool::StartSegment(uint64_t first_seq) {
  const fs::path path = dir_ / SegmentName(first_seq);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("creating", path);
  // The new file's directory entry must be durable too, or a crash could lose
  // the whole segment even though its data was fdatasync'ed.
  absl::Status synced = SyncDir(dir_);
  if (!synced.ok()) {
    ::close(fd);
    return synced;
  }
  if (write_fd_ >= 0) ::close(write_fd_);
  write_fd_ = fd;
  write_segment_bytes_ = 0;
  absl::MutexLock lock(&mu_);
  segments_.push_back({first_seq, path});
  return absl::OkStatus();
}

absl::Status EventSpool::Append(const std::vector<v1::TrainerEvent>& events) {
  if (events.empty()) return absl::OkStatus();
  uint64_t expect;
  {
    absl::MutexLock lock(&mu_);
    expect = last_seq_ + 1;
  }
  for (const auto& event : events) {
    if (event.seq() != expect) {
      return absl::FailedPreconditionError(
          absl::StrCat("trainer event seq ", event.seq(), " where ", expect,
                       " was expected (seq must be 1, 2, 3, ... without gaps)"));
    }
    ++expect;
  }
  if (write_fd_ < 0 || write_segment_bytes_ >= kSegmentBytes) {
    PENDULUM_RETURN_IF_ERROR(StartSegment(events.front().seq()));
  }
  std::string framed;
  std::vector<size_t> sizes;
  sizes.reserve(events.size());
  for (const auto& event : events) {
    const size_t before = framed.size();
    io::AppendDelimited(event, &framed);
    sizes.push_back(framed.size() - before);
  }
  const fs::path& path = dir_;
  PENDULUM_RETURN_IF_ERROR(WriteAll(write_fd_, framed.data(), framed.size(), path));
  // One fdatasync per batch (group commit): the no-loss rule needs the events
  // on disk before they are forwarded; the lock is not held across it.
  if (::fdatasync(write_fd_) != 0) return ErrnoError("fdatasync of spool in", path);
  write_segment_bytes_ += framed.size();

  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < events.size(); ++i) {
    pending_.push_back({events[i], sizes[i]});
    pending_bytes_ += sizes[i];
  }
  last_seq_ = events.back().seq();
  return absl::OkStatus();
}

absl::Status EventSpool::Ack(uint64_t acked_seq) {
  std::vector<fs::path> obsolete;
  bool advanced = false;
  {
    absl::MutexLock lock(&mu_);
    if (acked_seq > last_seq_) {
      PENDULUM_LOG(WARNING) << "spool " << dir_.string() << ": ack " << acked_seq
                            << " beyond last seq " << last_seq_ << "; clamped";
      acked_seq = last_seq_;
    }
    if (acked_seq > acked_seq_) {
      acked_seq_ = acked_seq;
      advanced = true;
    }
    while (!pending_.empty() && pending_.front().event.seq() <= acked_seq_) {
      pending_bytes_ -= pending_.front().bytes;
      pending_.pop_front();
    }
    // Segment i holds seqs [first_i, first_{i+1}); unlink it once all are acked.
    // The newest segment stays: the appender may still be writing to it.
    size_t drop = 0;
    while (drop + 1 < segments_.size() && segments_[drop + 1].first_seq <= acked_seq_ + 1) {
      obsolete.push_back(segments_[drop].path);
      ++drop;
    }
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<long>(drop));
  }
  // File work happens outside mu_. The ack mark is not fsynced on purpose:
  // losing it only makes us resend events the server drops as duplicates.
  if (advanced) {
    absl::MutexLock io_lock(&ack_io_mu_);
    unsigned char buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = static_cast<unsigned char>(acked_seq >> (8 * i));
    if (::pwrite(acked_fd_, buf, 8, 0) != 8) return ErrnoError("writing ack mark in", dir_);
  }
  for (const auto& path : obsolete) {
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) {
      PENDULUM_LOG(WARNING) << "removing acked spool segment " << path.string() << ": " << ec.message();
    }
  }
  return absl::OkStatus();
}

std::vector<v1::TrainerEvent> EventSpool::Pending(uint64_t after_seq, size_t max_events,
                                                  size_t max_bytes) const {
  std::vector<v1::TrainerEvent> out;
  absl::MutexLock lock(&mu_);
  if (pending_.empty()) return out;
  const uint64_t first = pending_.front().event.seq();
  size_t index = after_seq + 1 > first ? static_cast<size_t>(after_seq + 1 - first) : 0;
  size_t bytes = 0;
  for (; index < pending_.size() && out.size() < max_events; ++index) {
    if (!out.empty() && bytes + pending_[index].bytes > max_bytes) break;
    bytes += pending_[index].bytes;
    out.push_back(pending_[index].event);
  }
  return out;
}

uint64_t EventSpool::acked_seq() const {
  absl::MutexLock lock(&mu_);
  return acked_seq_;
}
uint64_t EventSpool::last_seq() const {
  absl::MutexLock lock(&mu_);
  return last_seq_;
}
uint64_t EventSpool::pending_events() const {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}
uint64_t EventSpool::pending_bytes() const {
  absl::MutexLock lock(&mu_);
  return pending_bytes_;
}

absl::Status EventSpool::RemoveAll() {
  if (write_fd_ >= 0) ::close(write_fd_);
  if (acked_fd_ >= 0) ::close(acked_fd_);
  write_fd_ = acked_fd_ = -1;
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("removing spool ", dir_.string(), ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace pendulum::daemon
