#include "server/store/token_store.h"

#include <openssl/rand.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/sha256.h"
#include "server/store/user_store.h"

namespace pendulum::store {

using pendulum::v1::Role;
using pendulum::v1::TokenInfo;

namespace {

// last_used is refreshed at most this often per token (see LookupToken).
constexpr int64_t kLastUsedResolutionMs = 60'000;

constexpr char kTokenColumns[] =
    "t.id, u.name, t.role, t.description, t.created_ms, t.last_used_ms, t.revoked";

TokenInfo RowToToken(const Statement& s) {
  TokenInfo t;
  t.set_id(s.ColumnInt(0));
  t.set_user(s.ColumnText(1));
  t.set_role(static_cast<Role>(s.ColumnInt(2)));
  t.set_description(s.ColumnText(3));
  t.set_created_unix_ms(s.ColumnInt(4));
  t.set_last_used_unix_ms(s.ColumnInt(5));
  t.set_revoked(s.ColumnInt(6) != 0);
  return t;
}

}  // namespace

TokenStore::TokenStore(Database* db, const Clock* clock) : db_(db), clock_(clock) {}

std::string TokenStore::HashToken(const std::string& token) { return Sha256Hex(token); }

absl::StatusOr<NewToken> TokenStore::CreateToken(const std::string& user, Role role,
                                                 const std::string& description) {
  PENDULUM_RETURN_IF_ERROR(ValidateUserName(user, "user"));
  if (role != pendulum::v1::ADMIN && role != pendulum::v1::USER && role != pendulum::v1::WORKER) {
    return absl::InvalidArgumentError(
        absl::StrCat("role: got ", Role_Name(role), ", must be ADMIN, USER or WORKER"));
  }
  unsigned char random[32];
  if (RAND_bytes(random, sizeof(random)) != 1) {
    return absl::InternalError("RAND_bytes failed: no secure random source for a new token");
  }
  NewToken result;
  result.token = absl::StrCat(
      "pdl_", absl::BytesToHexString(std::string(reinterpret_cast<char*>(random), sizeof(random))));
  const int64_t now = clock_->NowUnixMillis();

  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  Transaction txn(conn.get());
  PENDULUM_RETURN_IF_ERROR(txn.status());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * ins_user,
      conn->Prepare("INSERT OR IGNORE INTO users(name, role, gpu_quota, created_ms) VALUES (?, ?, 0, ?)"));
  ins_user->Bind(1, user).Bind(2, static_cast<int64_t>(role)).Bind(3, now);
  PENDULUM_RETURN_IF_ERROR(ins_user->Run());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * ins,
      conn->Prepare("INSERT INTO tokens(user_id, role, description, token_sha256, created_ms) "
                    "SELECT id, ?, ?, ?, ? FROM users WHERE name = ?"));
  ins->Bind(1, static_cast<int64_t>(role))
      .Bind(2, description)
      .Bind(3, HashToken(result.token))
      .Bind(4, now)
      .Bind(5, user);
  PENDULUM_RETURN_IF_ERROR(ins->Run());
  const int64_t id = conn->LastInsertRowId();
  PENDULUM_RETURN_IF_ERROR(txn.Commit());
  TokenInfo& info = result.info;
  info.set_id(id);
  info.set_user(user);
  info.set_role(role);
  info.set_description(description);
  info.set_created_unix_ms(now);
  return result;
}

absl::StatusOr<TokenInfo> TokenStore::LookupToken(const std::string& token) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s, conn->Prepare(absl::StrCat("SELECT ", kTokenColumns,
                                                " FROM tokens t JOIN users u ON u.id = t.user_id "
                                                "WHERE t.token_sha256 = ?")));
  s->Bind(1, HashToken(token));
  PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
  if (!row) return absl::NotFoundError("unknown token");
  TokenInfo info = RowToToken(*s);
  s->Reset();
  const int64_t now = clock_->NowUnixMillis();
  if (!info.revoked() && now - info.last_used_unix_ms() >= kLastUsedResolutionMs) {
    PENDULUM_ASSIGN_OR_RETURN(Statement * u,
                              conn->Prepare("UPDATE tokens SET last_used_ms = ? WHERE id = ?"));
    u->Bind(1, now).Bind(2, info.id());
    // Bookkeeping only: a busy database must not fail authentication.
    u->Run().IgnoreError();
    info.set_last_used_unix_ms(now);
  }
  return info;
}

absl::Status TokenStore::RevokeToken(int64_t token_id) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(Statement * s, conn->Prepare("UPDATE tokens SET revoked = 1 WHERE id = ?"));
  s->Bind(1, token_id);
  PENDULUM_RETURN_IF_ERROR(s->Run());
  if (conn->Changes() == 0) return absl::NotFoundError(absl::StrCat("token ", token_id, " not found"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TokenInfo>> TokenStore::ListTokens(const std::string& user) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s, conn->Prepare(absl::StrCat("SELECT ", kTokenColumns,
                                                " FROM tokens t JOIN users u ON u.id = t.user_id "
                                                "WHERE ? = '' OR u.name = ? ORDER BY t.id")));
  s->Bind(1, user).Bind(2, user);
  std::vector<TokenInfo> tokens;
  while (true) {
    PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    tokens.push_back(RowToToken(*s));
  }
  s->Reset();
  return tokens;
}

}  // namespace pendulum::store
