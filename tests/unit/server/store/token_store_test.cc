// TokenStore/UserStore: tokens are random, shown once, stored only as SHA-256.
#include "server/store/token_store.h"

#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "server/store/user_store.h"
#include "tests/unit/server/store/store_test_env.h"

namespace pendulum::store {
namespace {

using testing::StoreTest;

class TokenStoreTest : public StoreTest {};

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_F(TokenStoreTest, CreateThenLookupByHashCreatesTheUser) {
  TokenStore tokens(db_.get(), &clock_);
  ASSERT_OK_AND_ASSIGN(NewToken t, tokens.CreateToken("carol", pendulum::v1::ADMIN, "bootstrap"));
  EXPECT_EQ(t.token.rfind("pdl_", 0), 0u);
  EXPECT_EQ(t.token.size(), 4u + 64u);
  EXPECT_GT(t.info.id(), 0);
  UserStore users(db_.get(), &clock_);
  ASSERT_OK_AND_ASSIGN(pendulum::v1::User u, users.GetUser("carol"));
  EXPECT_EQ(u.role(), pendulum::v1::ADMIN);

  clock_.AdvanceMs(120'000);
  ASSERT_OK_AND_ASSIGN(pendulum::v1::TokenInfo info, tokens.LookupToken(t.token));
  EXPECT_EQ(info.user(), "carol");
  EXPECT_EQ(info.role(), pendulum::v1::ADMIN);
  EXPECT_FALSE(info.revoked());
  EXPECT_EQ(info.last_used_unix_ms(), clock_.NowUnixMillis());
  EXPECT_EQ(tokens.LookupToken(t.token + "x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tokens.LookupToken("").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TokenStoreTest, PlainTokenNeverReachesTheDatabaseFiles) {
  TokenStore tokens(db_.get(), &clock_);
  std::set<std::string> plain;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(NewToken t, tokens.CreateToken("dave", pendulum::v1::USER, "t" + std::to_string(i)));
    EXPECT_TRUE(plain.insert(t.token).second) << "tokens must be unique";
    ASSERT_OK(tokens.LookupToken(t.token).status());
  }
  // Check the main file and the WAL, before and after a checkpoint.
  std::string bytes = ReadFile(path_) + ReadFile(path_ + "-wal");
  db_.reset();  // closing checkpoints the WAL into the main file
  bytes += ReadFile(path_);
  ASSERT_GT(bytes.size(), 4096u);
  for (const std::string& t : plain) {
    const std::string secret = t.substr(4);  // the random part
    EXPECT_EQ(bytes.find(secret), std::string::npos) << "plain token stored";
    EXPECT_NE(bytes.find(TokenStore::HashToken(t)), std::string::npos) << "hash not stored";
  }
}

TEST_F(TokenStoreTest, RevokeAndList) {
  TokenStore tokens(db_.get(), &clock_);
  ASSERT_OK_AND_ASSIGN(NewToken a, tokens.CreateToken("erin", pendulum::v1::USER, "laptop"));
  ASSERT_OK_AND_ASSIGN(NewToken b, tokens.CreateToken("frank", pendulum::v1::WORKER, "gpu-host-1"));
  ASSERT_OK(tokens.RevokeToken(a.info.id()));
  ASSERT_OK(tokens.RevokeToken(a.info.id()));  // idempotent
  EXPECT_EQ(tokens.RevokeToken(99999).code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(pendulum::v1::TokenInfo info, tokens.LookupToken(a.token));
  EXPECT_TRUE(info.revoked());
  ASSERT_OK_AND_ASSIGN(auto all, tokens.ListTokens(""));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].description(), "laptop");
  EXPECT_TRUE(all[0].revoked());
  EXPECT_EQ(all[1].role(), pendulum::v1::WORKER);
  ASSERT_OK_AND_ASSIGN(auto franks, tokens.ListTokens("frank"));
  ASSERT_EQ(franks.size(), 1u);
  EXPECT_EQ(franks[0].id(), b.info.id());
}

TEST_F(TokenStoreTest, BadNamesAndRolesAreRejectedWithTheField) {
  TokenStore tokens(db_.get(), &clock_);
  auto bad = tokens.CreateToken("Bad Name", pendulum::v1::USER, "");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("user"), std::string::npos);
  bad = tokens.CreateToken("ok", pendulum::v1::ROLE_UNSPECIFIED, "");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("role"), std::string::npos);

  UserStore users(db_.get(), &clock_);
  ASSERT_OK(users.CreateUser("gina", pendulum::v1::USER, 4).status());
  EXPECT_EQ(users.CreateUser("gina", pendulum::v1::USER).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(users.CreateUser(std::string(65, 'a'), pendulum::v1::USER).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_OK(users.SetGpuQuota("gina", 8));
  ASSERT_OK_AND_ASSIGN(auto list, users.ListUsers());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].gpu_quota(), 8u);
  EXPECT_EQ(users.SetGpuQuota("nobody", 1).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pendulum::store
