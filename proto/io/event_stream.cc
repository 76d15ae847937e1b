#include "proto/io/event_stream.h"

#include <errno.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace pendulum::io {
namespace {

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Decodes a varint at data[pos..size). Returns bytes used, 0 if incomplete,
// -1 if malformed (longer than 5 bytes for a 32-bit length).
int DecodeVarint32(const char* data, size_t size, uint32_t* value) {
  uint64_t result = 0;
  for (size_t i = 0; i < size && i < 5; ++i) {
    const uint8_t byte = static_cast<uint8_t>(data[i]);
    result |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
    if ((byte & 0x80) == 0) {
      if (result > 0xFFFFFFFFull) return -1;
      *value = static_cast<uint32_t>(result);
      return static_cast<int>(i + 1);
    }
  }
  return size >= 5 ? -1 : 0;
}

}  // namespace

void AppendDelimited(const google::protobuf::MessageLite& event, std::string* out) {
  const size_t size = event.ByteSizeLong();
  AppendVarint(size, out);
  const size_t start = out->size();
  out->resize(start + size);
  event.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(&(*out)[start]));
}

absl::Status WriteDelimited(int fd, const google::protobuf::MessageLite& event) {
  std::string framed;
  AppendDelimited(event, &framed);
  size_t written = 0;
  while (written < framed.size()) {
    const ssize_t n = ::write(fd, framed.data() + written, framed.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("writing event: ", std::strerror(errno)));
    }
    written += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

bool EventReader::Fill() {
  if (eof_) return false;
  if (pos_ > 0 && pos_ >= buffer_.size() / 2) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  char chunk[65536];
  while (true) {
    const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
}

absl::StatusOr<std::optional<v1::TrainerEvent>> EventReader::Next() {
  while (true) {
    const size_t available = buffer_.size() - pos_;
    uint32_t length = 0;
    const int used = DecodeVarint32(buffer_.data() + pos_, available, &length);
    if (used < 0 || length > kMaxEventBytes) {
      return absl::DataLossError(absl::StrCat("corrupt event length at stream offset ", pos_));
    }
    if (used > 0 && available >= static_cast<size_t>(used) + length) {
      v1::TrainerEvent event;
      if (!event.ParseFromArray(buffer_.data() + pos_ + used, static_cast<int>(length))) {
        return absl::DataLossError("corrupt event record (protobuf parse failed)");
      }
      pos_ += static_cast<size_t>(used) + length;
      return std::optional<v1::TrainerEvent>(std::move(event));
    }
    if (!Fill()) {
      if (available == 0) return std::optional<v1::TrainerEvent>();
      return absl::DataLossError(
          absl::StrCat("stream ended inside an event record (", available, " bytes left)"));
    }
  }
}

absl::Status ParseDelimitedEvents(const std::string& data, std::vector<v1::TrainerEvent>* events,
                                  size_t* consumed_bytes) {
  size_t pos = 0;
  *consumed_bytes = 0;
  while (pos < data.size()) {
    uint32_t length = 0;
    const int used = DecodeVarint32(data.data() + pos, data.size() - pos, &length);
    if (used < 0 || length > kMaxEventBytes) {
      return absl::DataLossError(absl::StrCat("corrupt event length at offset ", pos));
    }
    if (used == 0 || data.size() - pos < static_cast<size_t>(used) + length) {
      return absl::DataLossError(absl::StrCat("truncated event record at offset ", pos));
    }
    v1::TrainerEvent event;
    if (!event.ParseFromArray(data.data() + pos + used, static_cast<int>(length))) {
      return absl::DataLossError(absl::StrCat("corrupt event record at offset ", pos));
    }
    events->push_back(std::move(event));
    pos += static_cast<size_t>(used) + length;
    *consumed_bytes = pos;
  }
  return absl::OkStatus();
}

}  // namespace pendulum::io
