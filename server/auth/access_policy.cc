#include "server/auth/access_policy.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pendulum::auth {
namespace {

absl::string_view RoleName(pendulum::v1::Role role) {
  switch (role) {
    case pendulum::v1::ADMIN: return "admin";
    case pendulum::v1::USER: return "user";
    case pendulum::v1::WORKER: return "worker";
    default: return "unknown";
  }
}

}  // namespace

absl::Status AccessPolicy::Check(const Principal& principal, absl::string_view full_method) {
  const pendulum::v1::Role role = principal.role;
  bool allowed = false;
  if (absl::StartsWith(full_method, "/pendulum.v1.RunService/")) {
    allowed = role == pendulum::v1::USER || role == pendulum::v1::ADMIN;
  } else if (absl::StartsWith(full_method, "/pendulum.v1.AdminService/")) {
    allowed = role == pendulum::v1::ADMIN;
  } else if (absl::StartsWith(full_method, "/pendulum.v1.WorkerService/")) {
    allowed = role == pendulum::v1::WORKER;
  }
  if (allowed) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("role '", RoleName(role), "' of user '",
                                                  principal.user, "' may not call ", full_method));
}

}  // namespace pendulum::auth
