// Transport-level protection of a real in-process server on 127.0.0.1:0:
// TLS by flag (self-signed certificate made at test time with openssl),
// message size limits and the per-token rate limit, plus their flags.
#include <string>

#include "gtest/gtest.h"
#include "server/api/server_options.h"
#include "tests/unit/server/api/api_test_env.h"
#include "tests/unit/server/auth/self_signed_cert.h"

namespace pendulum::testing {
namespace {

grpc::Status ListRuns(const std::shared_ptr<grpc::Channel>& channel, const std::string& token) {
  auto stub = v1::RunService::NewStub(channel);
  auto context = ApiTestEnv::Context(token);
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListRunsResponse response;
  return stub->ListRuns(context.get(), v1::ListRunsRequest(), &response);
}

TEST(TlsTest, TlsServerServesTlsClientsAndRefusesPlaintextAndUntrustingClients) {
  ApiTestEnv env;
  env.UseTls();
  env.StartServer();
  const std::string address = env.server_->address();

  grpc::Status ok = ListRuns(grpc::CreateChannel(address, env.ClientCredentials()), env.alice_token_);
  EXPECT_TRUE(ok.ok()) << ok.error_message();

  grpc::Status plaintext = ListRuns(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()),
                                    env.alice_token_);
  EXPECT_EQ(plaintext.error_code(), grpc::StatusCode::UNAVAILABLE) << plaintext.error_message();

  // A client that trusts some other certificate must not connect either.
  auto other = MakeSelfSignedCert(env.dir_, "other");
  ASSERT_TRUE(other.ok()) << other.status();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = other->cert_pem;
  grpc::Status untrusted = ListRuns(grpc::CreateChannel(address, grpc::SslCredentials(ssl)), env.alice_token_);
  EXPECT_EQ(untrusted.error_code(), grpc::StatusCode::UNAVAILABLE) << untrusted.error_message();

  // Still serving TLS clients after the failed handshakes.
  ok = ListRuns(grpc::CreateChannel(address, env.ClientCredentials()), env.alice_token_);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
}

TEST(TlsTest, PlaintextServerRefusesTlsClients) {
  ApiTestEnv env;
  env.StartServer();
  auto cert = MakeSelfSignedCert(env.dir_);
  ASSERT_TRUE(cert.ok()) << cert.status();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = cert->cert_pem;
  grpc::Status s = ListRuns(grpc::CreateChannel(env.server_->address(), grpc::SslCredentials(ssl)),
                            env.alice_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_TRUE(ListRuns(env.channel_, env.alice_token_).ok());
}

TEST(TlsTest, MissingOrUnreadableCertificateFilesStopStartUpNamingTheFlag) {
  ApiTestEnv env;
  auto cert = MakeSelfSignedCert(env.dir_);
  ASSERT_TRUE(cert.ok()) << cert.status();
  api::ServerOptions options = env.options_;
  options.tls_cert = cert->cert.string();
  options.tls_key = (env.dir_ / "no-such.key").string();
  auto server = api::Server::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("--tls-key"), std::string::npos) << server.status();
  EXPECT_NE(server.status().message().find("no-such.key"), std::string::npos) << server.status();

  options.tls_key = cert->cert.string();  // a certificate is not a key: TLS setup fails, no crash
  options.tls_cert = (env.dir_ / "server.openssl.log").string();
  server = api::Server::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("--tls-cert"), std::string::npos) << server.status();
}

TEST(TlsFlagsTest, CertAndKeyComeTogetherAndRateFlagsAreParsed) {
  auto both = api::ParseCommandLine({"--tls-cert", "a.crt", "--tls-key", "a.key", "--rate-limit", "20",
                                     "--rate-burst=40"});
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->options.tls_cert, "a.crt");
  EXPECT_EQ(both->options.tls_key, "a.key");
  EXPECT_EQ(both->options.rate_limit_per_second, 20);
  EXPECT_EQ(both->options.rate_burst, 40);

  auto only_cert = api::ParseCommandLine({"--tls-cert", "a.crt"});
  ASSERT_FALSE(only_cert.ok());
  EXPECT_NE(only_cert.status().message().find("--tls-key: required"), std::string::npos) << only_cert.status();

  auto defaults = api::ParseCommandLine({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults->options.tls_cert.empty());
  EXPECT_EQ(defaults->options.rate_limit_per_second, api::kDefaultRateLimit);
  EXPECT_EQ(defaults->options.rate_burst, api::kDefaultRateBurst);
  EXPECT_EQ(defaults->options.max_message_bytes, 8 << 20);

  auto bad = api::ParseCommandLine({"--rate-limit", "-3"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--rate-limit: got '-3'"), std::string::npos) << bad.status();
}

TEST(MessageLimitTest, OversizedMessageIsResourceExhaustedAndTheServerKeepsServing) {
  ApiTestEnv env;
  env.options_.max_message_bytes = (1 << 20) + (64 << 10);  // the smallest the flag allows
  env.StartServer();
  v1::SubmitRunRequest huge;
  huge.set_spec_text(std::string(4 << 20, '#'));  // a 4 MiB "comment"
  v1::SubmitRunResponse response;
  grpc::Status s = env.runs_->SubmitRun(ApiTestEnv::Context(env.alice_token_).get(), huge, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // The same channel and the server are fine afterwards.
  EXPECT_GT(env.Submit(env.alice_token_), 0);
  // A message under the limit (a long but valid spec) is accepted.
  std::string padded = std::string(kQuickSpec) + "# " + std::string(512 << 10, 'x') + "\n";
  v1::SubmitRunRequest large;
  large.set_spec_text(padded);
  s = env.runs_->SubmitRun(ApiTestEnv::Context(env.alice_token_).get(), large, &response);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST(RateLimitTest, RunawayTokenGetsResourceExhaustedWhileOthersAreServed) {
  ApiTestEnv env;
  env.options_.rate_limit_per_second = 2;
  env.options_.rate_burst = 5;
  env.StartServer();
  int allowed = 0;
  grpc::Status last;
  for (int i = 0; i < 50; ++i) {
    last = ListRuns(env.channel_, env.alice_token_);
    if (!last.ok()) break;
    ++allowed;
  }
  // 5 from the burst, plus at most what 2/s refilled while those calls ran.
  EXPECT_GE(allowed, 5);
  EXPECT_LE(allowed, 7);
  EXPECT_EQ(last.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << last.error_message();
  EXPECT_NE(last.error_message().find("rate limit exceeded"), std::string::npos) << last.error_message();
  EXPECT_NE(last.error_message().find("user 'alice'"), std::string::npos) << last.error_message();

  grpc::Status bob = ListRuns(env.channel_, env.bob_token_);
  EXPECT_TRUE(bob.ok()) << "bob is not starved by alice: " << bob.error_message();
  absl::SleepFor(absl::Milliseconds(600));  // > one call's worth at 2/s
  grpc::Status again = ListRuns(env.channel_, env.alice_token_);
  EXPECT_TRUE(again.ok()) << "the bucket refills: " << again.error_message();
}

}  // namespace
}  // namespace pendulum::testing
