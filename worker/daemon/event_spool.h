#pragma once
// EventSpool: the durable, append-only queue of one run attempt's trainer
// events on the worker's disk. The no-loss rule is enforced here: an event is
// appended and fdatasync'ed BEFORE anyone may forward it, and it is dropped
// only after the server acked its seq (Ack), never earlier.
//
// On disk (one directory per attempt):
//   seg-<first seq, 20 digits>.log  framed TrainerEvents (proto/io/event_stream.h)
//   acked                            8-byte little-endian highest acked seq
// Segments roll at kSegmentBytes; a segment whose events are all acked is
// unlinked. Reopening after a crash re-reads the segments, truncates a torn
// tail (a record cut short by a crash) and resumes after the acked mark.
//
// Threads: Append is called by ONE appender thread (it alone writes the files
// and does the fdatasync, without holding the lock). Ack, Pending and the
// accessors may be called from any thread concurrently with it.
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "pendulum/v1/events.pb.h"

namespace pendulum::daemon {

class EventSpool {
 public:
  // Size at which a new segment file starts.
  static constexpr uint64_t kSegmentBytes = 4u << 20;

  struct RecoveryInfo {
    uint64_t events_recovered = 0;   // unacked events found on disk
    uint64_t torn_bytes_dropped = 0; // bytes cut from a torn tail
  };

  // Opens (creating if needed) the spool in `dir` and recovers its contents.
  static absl::StatusOr<std::unique_ptr<EventSpool>> Open(const std::filesystem::path& dir);
  ~EventSpool();
  EventSpool(const EventSpool&) = delete;
  EventSpool& operator=(const EventSpool&) = delete;

  // Appends `events` (seq must continue last_seq()+1, +2, ... without gaps) in
  // one write and one fdatasync: a group commit. Only after this returns OK are
  // the events visible to Pending(). FAILED_PRECONDITION on a seq gap.
  absl::Status Append(const std::vector<v1::TrainerEvent>& events);

  // The server durably stored every event up to `acked_seq`: drop them from
  // memory and unlink fully-acked segments. Acks at or below the current mark
  // are ignored; an ack beyond last_seq() is clamped (and logged).
  absl::Status Ack(uint64_t acked_seq);

  // Copies of the spooled events with seq > after_seq, oldest first, at most
  // max_events of them and about max_bytes (always at least one if any).
  std::vector<v1::TrainerEvent> Pending(uint64_t after_seq, size_t max_events,
                                        size_t max_bytes) const;

  uint64_t acked_seq() const;
  uint64_t last_seq() const;         // highest seq appended (0 if none)
  uint64_t pending_events() const;   // appended but not yet acked
  uint64_t pending_bytes() const;    // their serialized size
  RecoveryInfo recovery() const { return recovery_; }
  const std::filesystem::path& dir() const { return dir_; }

  // Removes the whole spool directory. Call only when everything is acked and
  // the attempt is over; the object must not be used afterwards.
  absl::Status RemoveAll();

 private:
  struct Segment {
    uint64_t first_seq;
    std::filesystem::path path;
  };
  struct Entry {
    v1::TrainerEvent event;
    size_t bytes;
  };
  explicit EventSpool(std::filesystem::path dir) : dir_(std::move(dir)) {}
  absl::Status Recover();
  absl::Status StartSegment(uint64_t first_seq);  // appender thread only

  const std::filesystem::path dir_;
  RecoveryInfo recovery_;

  // Appender-thread state (never touched by other threads after Open).
  int write_fd_ = -1;
  uint64_t write_segment_bytes_ = 0;
  int acked_fd_ = -1;  // written under ack_io_mu_

  mutable absl::Mutex mu_;
  std::deque<Entry> pending_ ABSL_GUARDED_BY(mu_);   // seq > acked_seq_
  std::vector<Segment> segments_ ABSL_GUARDED_BY(mu_);
  uint64_t acked_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;

  // Serializes the (tiny, non-fsynced) writes of the ack mark.
  absl::Mutex ack_io_mu_;
};

}  // namespace pendulum::daemon
