#pragma once
// SelfSignedCert: a throw-away TLS certificate for tests, made at test time
// with `openssl req -x509` (P-256 key, valid one day, subjectAltName
// localhost + 127.0.0.1 so gRPC's hostname check passes for 127.0.0.1:PORT).
// Header-only; used by the auth matrix, the TLS tests and the real-binary tests.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace pendulum::testing {

struct SelfSignedCert {
  std::filesystem::path cert;  // PEM certificate (also the client's CA)
  std::filesystem::path key;   // PEM private key
  std::string cert_pem;
  std::string key_pem;
};

inline std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `<stem>.crt` and `<stem>.key` into `dir`.
inline absl::StatusOr<SelfSignedCert> MakeSelfSignedCert(const std::filesystem::path& dir,
                                                         const std::string& stem = "server") {
  SelfSignedCert c;
  c.cert = dir / (stem + ".crt");
  c.key = dir / (stem + ".key");
  const std::filesystem::path log = dir / (stem + ".openssl.log");
  const std::string command = absl::StrCat(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost",
      " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout '", c.key.string(), "' -out '",
      c.cert.string(), "' > '", log.string(), "' 2>&1");
  if (std::system(command.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("openssl failed: ", command, "\n", ReadWholeFile(log)));
  }
  c.cert_pem = ReadWholeFile(c.cert);
  c.key_pem = ReadWholeFile(c.key);
  if (c.cert_pem.find("BEGIN CERTIFICATE") == std::string::npos) {
    return absl::InternalError(absl::StrCat("openssl wrote no certificate to ", c.cert.string()));
  }
  return c;
}

}  // namespace pendulum::testing
