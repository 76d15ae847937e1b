#pragma once
// Principal: who is calling, as established from a bearer token. A value type.

#include <cstdint>
#include <string>

#include "pendulum/v1/admin_service.pb.h"

namespace pendulum::auth {

struct Principal {
  std::string user;
  pendulum::v1::Role role = pendulum::v1::ROLE_UNSPECIFIED;
  int64_t token_id = 0;

  bool is_admin() const { return role == pendulum::v1::ADMIN; }
  // Admins may see and cancel every run; users only their own.
  bool CanAccessRunOf(const std::string& owner) const { return is_admin() || owner == user; }
};

}  // namespace pendulum::auth
