#pragma once
// Reads the last bytes of a file (a trainer's stderr) as readable text: at most
// `max_bytes`, starting at a line boundary when the file was longer, with any
// invalid UTF-8 replaced by '?' (proto3 strings must be valid UTF-8).
// Stateless and thread-safe.
#include <cstddef>
#include <string>

namespace pendulum::daemon {

// Missing or unreadable file: an empty string.
std::string ReadFileTail(const std::string& path, size_t max_bytes);

// Replaces every byte that is not part of a valid UTF-8 sequence with '?'.
std::string SanitizeUtf8(const std::string& text);

}  // namespace pendulum::daemon
