#include "server/store/user_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace pendulum::store {

using pendulum::v1::Role;
using pendulum::v1::User;

absl::Status ValidateUserName(const std::string& name, const std::string& field) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) {
      ok = false;
    }
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": got \"", name,
                                                 "\", must be 1..64 characters of [a-z0-9_.-]"));
}

namespace {
absl::Status ValidateRole(Role role) {
  if (role == pendulum::v1::ADMIN || role == pendulum::v1::USER || role == pendulum::v1::WORKER) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("role: got ", Role_Name(role), ", must be ADMIN, USER or WORKER"));
}

User RowToUser(const Statement& s) {
  User u;
  u.set_name(s.ColumnText(0));
  u.set_role(static_cast<Role>(s.ColumnInt(1)));
  u.set_gpu_quota(static_cast<uint32_t>(s.ColumnInt(2)));
  u.set_created_unix_ms(s.ColumnInt(3));
  return u;
}
}  // namespace

UserStore::UserStore(Database* db, const Clock* clock) : db_(db), clock_(clock) {}

absl::StatusOr<User> UserStore::CreateUser(const std::string& name, Role role, uint32_t gpu_quota) {
  PENDULUM_RETURN_IF_ERROR(ValidateUserName(name));
  PENDULUM_RETURN_IF_ERROR(ValidateRole(role));
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare("INSERT INTO users(name, role, gpu_quota, created_ms) VALUES (?, ?, ?, ?)"));
  const int64_t now = clock_->NowUnixMillis();
  s->Bind(1, name).Bind(2, static_cast<int64_t>(role)).Bind(3, static_cast<int64_t>(gpu_quota)).Bind(4, now);
  absl::Status st = s->Run();
  if (absl::IsAlreadyExists(st)) {
    return absl::AlreadyExistsError(absl::StrCat("user \"", name, "\" already exists"));
  }
  PENDULUM_RETURN_IF_ERROR(st);
  User u;
  u.set_name(name);
  u.set_role(role);
  u.set_gpu_quota(gpu_quota);
  u.set_created_unix_ms(now);
  return u;
}

absl::StatusOr<User> UserStore::GetUser(const std::string& name) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s, conn->Prepare("SELECT name, role, gpu_quota, created_ms FROM users WHERE name = ?"));
  s->Bind(1, name);
  PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("user \"", name, "\" not found"));
  User u = RowToUser(*s);
  s->Reset();
  return u;
}

absl::StatusOr<std::vector<User>> UserStore::ListUsers() {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s, conn->Prepare("SELECT name, role, gpu_quota, created_ms FROM users ORDER BY name"));
  std::vector<User> users;
  while (true) {
    PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    users.push_back(RowToUser(*s));
  }
  s->Reset();
  return users;
}

absl::Status UserStore::SetGpuQuota(const std::string& name, uint32_t gpu_quota) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(Statement * s, conn->Prepare("UPDATE users SET gpu_quota = ? WHERE name = ?"));
  s->Bind(1, static_cast<int64_t>(gpu_quota)).Bind(2, name);
  PENDULUM_RETURN_IF_ERROR(s->Run());
  if (conn->Changes() == 0) return absl::NotFoundError(absl::StrCat("user \"", name, "\" not found"));
  return absl::OkStatus();
}

}  // namespace pendulum::store
