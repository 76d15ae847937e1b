// Command-line parsing of pendulum-server: defaults, both flag forms, token
// create, and errors that name the flag and what is allowed.
#include "server/api/server_options.h"

#include "gtest/gtest.h"

namespace pendulum::api {
namespace {

TEST(ServerOptionsTest, DefaultsMatchTheDocumentedOnes) {
  auto c = ParseCommandLine({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, Command::Kind::kServe);
  EXPECT_EQ(c->options.db_path, "pendulum.db");
  EXPECT_EQ(c->options.listen, "127.0.0.1:7070");
  EXPECT_EQ(c->options.metrics_listen, "");
  EXPECT_EQ(c->options.lease_seconds, 15);
  EXPECT_EQ(c->options.heartbeat_seconds, 3);
}

TEST(ServerOptionsTest, BothFlagFormsAreAccepted) {
  auto c = ParseCommandLine({"--db", "/tmp/x.db", "--listen=127.0.0.1:0", "--metrics-listen", "127.0.0.1:9100",
                             "--artifacts=/tmp/a", "--lease-seconds", "5", "--heartbeat-seconds=1"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->options.db_path, "/tmp/x.db");
  EXPECT_EQ(c->options.listen, "127.0.0.1:0");
  EXPECT_EQ(c->options.metrics_listen, "127.0.0.1:9100");
  EXPECT_EQ(c->options.artifacts_dir, "/tmp/a");
  EXPECT_EQ(c->options.lease_seconds, 5);
  EXPECT_EQ(c->options.heartbeat_seconds, 1);
}

TEST(ServerOptionsTest, TokenCreate) {
  auto c = ParseCommandLine({"token", "create", "--db", "p.db", "--user", "alice", "--role", "worker"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kind, Command::Kind::kTokenCreate);
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->role, v1::WORKER);
  auto bad = ParseCommandLine({"token", "create", "--db", "p.db", "--user", "alice", "--role", "root"});
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_NE(bad.status().message().find("--role"), std::string::npos);
  EXPECT_FALSE(ParseCommandLine({"token", "create", "--db", "p.db", "--role", "user"}).ok());
  EXPECT_FALSE(ParseCommandLine({"token", "delete"}).ok());
}

TEST(ServerOptionsTest, BadFlagsNameTheFlagAndTheRange) {
  auto unknown = ParseCommandLine({"--colour", "blue"});
  EXPECT_NE(unknown.status().message().find("--colour"), std::string::npos);
  auto lease = ParseCommandLine({"--lease-seconds", "0"});
  EXPECT_NE(lease.status().message().find("--lease-seconds"), std::string::npos);
  EXPECT_NE(lease.status().message().find("1..3600"), std::string::npos);
  EXPECT_FALSE(ParseCommandLine({"--lease-seconds", "2", "--heartbeat-seconds", "5"}).ok());
  EXPECT_FALSE(ParseCommandLine({"--listen", "nohostport"}).ok());
  EXPECT_FALSE(ParseCommandLine({"--db"}).ok());
  EXPECT_EQ(ParseCommandLine({"--help"})->kind, Command::Kind::kHelp);
}

}  // namespace
}  // namespace pendulum::api
