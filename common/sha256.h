#pragma once
// SHA-256 (OpenSSL EVP), as lowercase hex: the one implementation behind
// token hashes, migration checksums, artifact and checkpoint checksums on the
// server, the worker and the trainer.
//   Sha256          incremental, for streams (artifact chunks);
//   Sha256Hex       one string;
//   Sha256FileHex   a file, read in 1 MiB pieces.
// A Sha256 object is single-threaded; the free functions are thread-safe.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of this header

namespace pendulum {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view bytes);
  // The digest of everything passed to Update. Call once.
  std::string HexDigest();

 private:
  ::evp_md_ctx_st* ctx_;
};

std::string Sha256Hex(std::string_view bytes);

// NOT_FOUND naming the path when it cannot be opened; UNAVAILABLE on a read error.
absl::StatusOr<std::string> Sha256FileHex(const std::string& path);

}  // namespace pendulum
