#pragma once
// UserStore: the users table (name, role, GPU quota).
// Threads: thread-safe (stateless; each call borrows a pooled connection).
// Errors: INVALID_ARGUMENT (bad name or role, naming the field and what is
// allowed), ALREADY_EXISTS, NOT_FOUND, UNAVAILABLE (database busy).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "pendulum/v1/admin_service.pb.h"
#include "server/store/database.h"

namespace pendulum::store {

// OK if `name` is 1..64 chars of [a-z0-9_.-]; else INVALID_ARGUMENT naming `field`.
absl::Status ValidateUserName(const std::string& name, const std::string& field = "name");

class UserStore {
 public:
  // `db` and `clock` must outlive the UserStore.
  UserStore(Database* db, const Clock* clock);

  // Creates a user. role must be ADMIN, USER or WORKER. ALREADY_EXISTS if present.
  absl::StatusOr<pendulum::v1::User> CreateUser(const std::string& name, pendulum::v1::Role role,
                                                uint32_t gpu_quota = 0);
  absl::StatusOr<pendulum::v1::User> GetUser(const std::string& name);
  // All users, by name.
  absl::StatusOr<std::vector<pendulum::v1::User>> ListUsers();
  // 0 = unlimited. NOT_FOUND if absent.
  absl::Status SetGpuQuota(const std::string& name, uint32_t gpu_quota);

 private:
  Database* db_;
  const Clock* clock_;
};

}  // namespace pendulum::store
