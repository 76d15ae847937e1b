#pragma once
// Length-delimited TrainerEvent framing (varint byte length, then the message),
// the format pendulum-train writes to its pipe/file and the daemon's spool
// stores. Compatible with protobuf's SerializeDelimitedTo/ParseDelimitedFrom.
// Each writer/reader owns no fd; one instance per thread.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pendulum/v1/events.pb.h"

namespace pendulum::io {

// Largest accepted framed message; bigger lengths are treated as corruption.
inline constexpr uint32_t kMaxEventBytes = 64u << 20;

// Appends the framed encoding of `event` to *out.
void AppendDelimited(const google::protobuf::MessageLite& event, std::string* out);

// Writes one framed event to `fd` (all bytes, retrying on EINTR/short writes).
absl::Status WriteDelimited(int fd, const google::protobuf::MessageLite& event);

// Reads framed events from a file descriptor with internal buffering.
class EventReader {
 public:
  explicit EventReader(int fd) : fd_(fd) {}
  // Next event; std::nullopt at clean end of stream. A stream that ends in the
  // middle of a record (a writer killed mid-write) returns DATA_LOSS naming
  // how many bytes were left; a corrupt record returns DATA_LOSS too.
  absl::StatusOr<std::optional<v1::TrainerEvent>> Next();

 private:
  bool Fill();  // reads more bytes; false at EOF
  int fd_;
  std::string buffer_;
  size_t pos_ = 0;
  bool eof_ = false;
};

// Parses every framed event in `data`. Stops with DATA_LOSS on a truncated or
// corrupt record, returning the events before it via *events.
absl::Status ParseDelimitedEvents(const std::string& data, std::vector<v1::TrainerEvent>* events,
                                  size_t* consumed_bytes);

}  // namespace pendulum::io
