#pragma once
// Authenticator: turns the value of the `authorization` request header
// ("Bearer <token>") into a Principal, by looking the token's SHA-256 up in
// the TokenStore (plain tokens are never stored). Revoked tokens fail, so a
// revocation takes effect on the next call.
// Threads: thread-safe (TokenStore is). Errors: UNAUTHENTICATED with a message
// that says what was wrong (missing header, not "Bearer", unknown or revoked
// token); UNAVAILABLE if the database is busy; RESOURCE_EXHAUSTED when the
// token is over its rate limit (an optional RateLimiter, checked after the
// token is known so the bucket is per token).

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "server/auth/principal.h"
#include "server/auth/rate_limiter.h"
#include "server/store/token_store.h"

namespace pendulum::auth {

class Authenticator {
 public:
  // `tokens` must outlive the Authenticator.
  explicit Authenticator(store::TokenStore* tokens, RateLimiter* limiter = nullptr)
      : tokens_(tokens), limiter_(limiter) {}

  // `header` is the raw metadata value; `present` false when the call had none.
  absl::StatusOr<Principal> Authenticate(bool present, absl::string_view header) const;

 private:
  store::TokenStore* tokens_;
  RateLimiter* limiter_;  // may be null (no limit); must outlive this
};

}  // namespace pendulum::auth
