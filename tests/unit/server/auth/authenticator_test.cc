// Authenticator over a real TokenStore (temp SQLite file), and the role table.
#include "server/auth/authenticator.h"

#include "gtest/gtest.h"
#include "server/auth/access_policy.h"
#include "server/store/database.h"
#include "tests/support/test_paths.h"

namespace pendulum::auth {
namespace {

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::DatabaseOptions options;
    options.path = (pendulum::testing::MakeTestTempDir() / "auth.db").string();
    auto db = store::Database::Open(options);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    tokens_ = std::make_unique<store::TokenStore>(db_.get(), RealClock::Get());
    authenticator_ = std::make_unique<Authenticator>(tokens_.get());
  }
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<store::TokenStore> tokens_;
  std::unique_ptr<Authenticator> authenticator_;
};

TEST_F(AuthenticatorTest, ValidBearerTokenGivesItsUserAndRole) {
  auto token = tokens_->CreateToken("alice", v1::USER, "t");
  ASSERT_TRUE(token.ok()) << token.status();
  auto who = authenticator_->Authenticate(true, "Bearer " + token->token);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->user, "alice");
  EXPECT_EQ(who->role, v1::USER);
  EXPECT_EQ(who->token_id, token->info.id());
  // The scheme is case-insensitive (RFC 7235).
  EXPECT_TRUE(authenticator_->Authenticate(true, "bearer " + token->token).ok());
}

TEST_F(AuthenticatorTest, MissingMalformedUnknownAndRevokedTokensFail) {
  auto token = tokens_->CreateToken("bob", v1::ADMIN, "t");
  ASSERT_TRUE(token.ok());
  auto missing = authenticator_->Authenticate(false, "");
  EXPECT_TRUE(absl::IsUnauthenticated(missing.status()));
  EXPECT_NE(missing.status().message().find("authorization"), std::string::npos);
  EXPECT_TRUE(absl::IsUnauthenticated(authenticator_->Authenticate(true, token->token).status()));
  EXPECT_TRUE(absl::IsUnauthenticated(authenticator_->Authenticate(true, "Bearer ").status()));
  EXPECT_TRUE(absl::IsUnauthenticated(authenticator_->Authenticate(true, "Bearer pdl_00").status()));
  ASSERT_TRUE(tokens_->RevokeToken(token->info.id()).ok());
  auto revoked = authenticator_->Authenticate(true, "Bearer " + token->token);
  EXPECT_TRUE(absl::IsUnauthenticated(revoked.status()));
  EXPECT_NE(revoked.status().message().find("revoked"), std::string::npos);
}

TEST(AccessPolicyTest, RolesReachOnlyTheirServices) {
  Principal admin{"root", v1::ADMIN, 1}, user{"alice", v1::USER, 2}, worker{"w", v1::WORKER, 3};
  const std::string run = "/pendulum.v1.RunService/SubmitRun";
  const std::string adm = "/pendulum.v1.AdminService/CreateToken";
  const std::string wrk = "/pendulum.v1.WorkerService/Connect";
  EXPECT_TRUE(AccessPolicy::Check(admin, run).ok());
  EXPECT_TRUE(AccessPolicy::Check(admin, adm).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(AccessPolicy::Check(admin, wrk)));
  EXPECT_TRUE(AccessPolicy::Check(user, run).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(AccessPolicy::Check(user, adm)));
  EXPECT_TRUE(absl::IsPermissionDenied(AccessPolicy::Check(user, wrk)));
  EXPECT_TRUE(absl::IsPermissionDenied(AccessPolicy::Check(worker, run)));
  EXPECT_TRUE(absl::IsPermissionDenied(AccessPolicy::Check(worker, adm)));
  EXPECT_TRUE(AccessPolicy::Check(worker, wrk).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(AccessPolicy::Check(admin, "/other.Service/Call")));
  EXPECT_NE(AccessPolicy::Check(worker, run).message().find("worker"), std::string::npos);
}

TEST(PrincipalTest, AdminsAccessEveryRunUsersOnlyTheirOwn) {
  Principal admin{"root", v1::ADMIN, 1}, user{"alice", v1::USER, 2};
  EXPECT_TRUE(admin.CanAccessRunOf("alice"));
  EXPECT_TRUE(user.CanAccessRunOf("alice"));
  EXPECT_FALSE(user.CanAccessRunOf("bob"));
}

}  // namespace
}  // namespace pendulum::auth
