#include "server/auth/authenticator.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace pendulum::auth {

absl::StatusOr<Principal> Authenticator::Authenticate(bool present, absl::string_view header) const {
  if (!present) {
    return absl::UnauthenticatedError(
        "missing 'authorization' metadata; send 'authorization: Bearer <token>' "
        "(the CLI reads the token from PENDULUM_TOKEN)");
  }
  constexpr absl::string_view kBearer = "bearer ";
  if (header.size() <= kBearer.size() || !absl::StartsWithIgnoreCase(header, kBearer)) {
    return absl::UnauthenticatedError("'authorization' metadata must be 'Bearer <token>'");
  }
  std::string token(absl::StripAsciiWhitespace(header.substr(kBearer.size())));
  absl::StatusOr<pendulum::v1::TokenInfo> info = tokens_->LookupToken(token);
  if (absl::IsNotFound(info.status())) {
    return absl::UnauthenticatedError("invalid token");
  }
  if (!info.ok()) return info.status();
  if (info->revoked()) return absl::UnauthenticatedError("token has been revoked");
  Principal principal;
  principal.user = info->user();
  principal.role = info->role();
  principal.token_id = info->id();
  if (limiter_ != nullptr) {
    absl::Status allowed = limiter_->Acquire(principal.token_id, principal.user);
    if (!allowed.ok()) return allowed;
  }
  return principal;
}

}  // namespace pendulum::auth
