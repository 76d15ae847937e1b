#pragma once
// Sha256Hex: lowercase hex SHA-256 of a byte string (OpenSSL). Thread-safe.
// Used for token hashes, migration checksums and artifact checks.

#include <string>
#include <string_view>

namespace pendulum::store {

std::string Sha256Hex(std::string_view bytes);

}  // namespace pendulum::store
