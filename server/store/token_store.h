#pragma once
// TokenStore: bearer tokens. A token is 32 random bytes (OpenSSL RAND_bytes),
// hex-encoded with a "pdl_" prefix; only its SHA-256 (hex) is stored, so the
// plain token exists only in CreateToken's return value.
// Threads: thread-safe (stateless; each call borrows a pooled connection).
// Errors: INVALID_ARGUMENT (bad user name / role), NOT_FOUND, UNAVAILABLE.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "pendulum/v1/admin_service.pb.h"
#include "server/store/database.h"

namespace pendulum::store {

struct NewToken {
  std::string token;             // the plain token: show it once, never store it
  pendulum::v1::TokenInfo info;  // id, user, role, description, created
};

class TokenStore {
 public:
  // `db` and `clock` must outlive the TokenStore.
  TokenStore(Database* db, const Clock* clock);

  // Hex SHA-256 of a plain token (what the tokens table stores).
  static std::string HashToken(const std::string& token);

  // Creates a token for `user` with `role`. If the user does not exist it is
  // created with `role` in the same transaction (CreateTokenRequest semantics).
  absl::StatusOr<NewToken> CreateToken(const std::string& user, pendulum::v1::Role role,
                                       const std::string& description);

  // Looks a plain token up by its hash. NOT_FOUND if unknown; a revoked token
  // is returned with revoked = true (the caller denies it). Updates
  // last_used_unix_ms at most once a minute per token, so authentication does
  // not turn every RPC into a write.
  absl::StatusOr<pendulum::v1::TokenInfo> LookupToken(const std::string& token);

  // Marks the token revoked (idempotent). NOT_FOUND if no such id.
  absl::Status RevokeToken(int64_t token_id);

  // Tokens of `user` (empty = all), by id. Never includes hashes.
  absl::StatusOr<std::vector<pendulum::v1::TokenInfo>> ListTokens(const std::string& user);

 private:
  Database* db_;
  const Clock* clock_;
};

}  // namespace pendulum::store
