// TLS and the rate limit with the real binaries: pendulum-server serving TLS
// with a self-signed certificate made at test time (openssl), the pendulum CLI
// and pendulum-worker dialing with --tls-ca, a run placed and cancelled over
// TLS, a plaintext CLI refused with a clear hint, and the CLI hitting
// --rate-limit.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/worker/cluster.h"
#include "tests/support/test_paths.h"
#include "tests/unit/server/auth/self_signed_cert.h"

namespace pendulum::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kSpec[] = R"(name: over-tls
model: {arch: mlp, hidden: [8]}
data: {dataset: synthetic, synthetic: {num_train: 64, num_eval: 16, num_classes: 2, shape: [4]}}
optimizer: {type: sgd, lr: 0.05}
schedule: {epochs: 1, batch_size: 16}
)";

std::string CliBinary() { return (BinaryDir() / "client" / "pendulum").string(); }
std::string MetricsTrainer() {
  return (BinaryDir() / "tests" / "integration" / "observability" / "metrics_trainer").string();
}

struct Result {
  int exit_code = -1;
  std::string out, err;
};

// Runs the CLI with `args`; PENDULUM_TOKEN=token.
Result Cli(const fs::path& dir, const std::string& token, const std::vector<std::string>& args) {
  daemon::ChildOptions options;
  options.argv = {CliBinary()};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.stdout_path = (dir / "cli.out").string();
  options.stderr_path = (dir / "cli.err").string();
  options.env_set = {{"PENDULUM_TOKEN", token}};
  fs::remove(options.stdout_path);
  fs::remove(options.stderr_path);
  Result r;
  auto child = daemon::ChildProcess::Spawn(options);
  if (!child.ok()) {
    r.err = child.status().ToString();
    return r;
  }
  daemon::ExitStatus exit = (*child)->Wait();
  r.exit_code = exit.ShellCode();
  r.out = cluster::ReadFile(options.stdout_path);
  r.err = cluster::ReadFile(options.stderr_path);
  return r;
}

class TlsBinariesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestTempDir();
    auto cert = MakeSelfSignedCert(dir_);
    ASSERT_TRUE(cert.ok()) << cert.status();
    cert_ = *cert;
    db_ = dir_ / "pendulum.db";
    auto admin = cluster::CreateToken(db_, "root", "admin", dir_);
    auto alice = cluster::CreateToken(db_, "alice", "user", dir_);
    auto worker = cluster::CreateToken(db_, "w", "worker", dir_);
    ASSERT_TRUE(admin.ok() && alice.ok() && worker.ok()) << admin.status() << alice.status() << worker.status();
    admin_ = *admin;
    alice_ = *alice;
    worker_token_ = *worker;
  }

  // Starts the server with `flags` and returns its address.
  std::string StartServer(std::vector<std::string> flags) {
    std::vector<std::string> argv = {cluster::ServerBinary(), "--db", db_.string(), "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto server = cluster::Process::Start(argv, dir_ / "server.log");
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return "";
    server_ = std::move(*server);
    auto port = server_->WaitForLog("listening on 127\\.0\\.0\\.1:([0-9]+)", absl::Seconds(30));
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? "127.0.0.1:" + *port : "";
  }

  fs::path dir_, db_;
  SelfSignedCert cert_;
  std::string admin_, alice_, worker_token_;
  std::unique_ptr<cluster::Process> server_;
};

TEST_F(TlsBinariesTest, CliAndWorkerWorkOverTlsAndPlaintextClientsGetAClearError) {
  const std::string address =
      StartServer({"--tls-cert", cert_.cert.string(), "--tls-key", cert_.key.string(), "--heartbeat-seconds", "1"});
  ASSERT_FALSE(address.empty());
  EXPECT_NE(server_->Log().find("(TLS"), std::string::npos) << server_->Log();

  Result plaintext = Cli(dir_, alice_, {"--server", address, "runs"});
  EXPECT_EQ(plaintext.exit_code, 1) << plaintext.out << plaintext.err;
  EXPECT_NE(plaintext.err.find("UNAVAILABLE"), std::string::npos) << plaintext.err;
  EXPECT_NE(plaintext.err.find("--tls-ca"), std::string::npos) << "hint missing: " << plaintext.err;

  Result missing_ca = Cli(dir_, alice_, {"--server", address, "--tls-ca", (dir_ / "nope.crt").string(), "runs"});
  EXPECT_EQ(missing_ca.exit_code, 2) << missing_ca.err;
  EXPECT_NE(missing_ca.err.find("--tls-ca"), std::string::npos) << missing_ca.err;

  auto worker = cluster::Process::Start(
      {cluster::WorkerBinary(), "--server", address, "--worker-id", "tls-w1", "--work-dir",
       (dir_ / "work").string(), "--trainer", MetricsTrainer(), "--slots", "1", "--tls-ca", cert_.cert.string()},
      dir_ / "worker.log", {{"PENDULUM_TOKEN", worker_token_}});
  ASSERT_TRUE(worker.ok()) << worker.status();

  const std::vector<std::string> tls = {"--server", address, "--tls-ca", cert_.cert.string()};
  auto with = [&](std::vector<std::string> args) {
    std::vector<std::string> all = tls;
    all.insert(all.end(), args.begin(), args.end());
    return all;
  };
  std::ofstream(dir_ / "spec.yaml") << kSpec;
  Result submit = Cli(dir_, alice_, with({"submit", (dir_ / "spec.yaml").string()}));
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  const std::string run_id = submit.out.substr(0, submit.out.find('\n'));

  // The worker registered over TLS and runs the run.
  bool running = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!running && absl::Now() < deadline) {
    Result show = Cli(dir_, alice_, with({"show", run_id}));
    running = show.exit_code == 0 && show.out.find("RUNNING") != std::string::npos;
    if (!running) absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(running) << "worker log:\n" << (*worker)->Log();
  Result workers = Cli(dir_, admin_, with({"workers"}));
  EXPECT_EQ(workers.exit_code, 0) << workers.err;
  EXPECT_NE(workers.out.find("tls-w1"), std::string::npos) << workers.out;
  Result cancel = Cli(dir_, alice_, with({"cancel", run_id}));
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
}

TEST_F(TlsBinariesTest, RateLimitFlagThrottlesARunawayClient) {
  const std::string address = StartServer({"--rate-limit", "1", "--rate-burst", "2"});
  ASSERT_FALSE(address.empty());
  int ok = 0;
  Result last;
  // Each call is a fresh CLI process; unless one takes over a second (the
  // refill time), the bucket of 2 empties within a few calls.
  for (int i = 0; i < 20; ++i) {
    last = Cli(dir_, alice_, {"--server", address, "runs"});
    if (last.exit_code != 0) break;
    ++ok;
  }
  EXPECT_GE(ok, 2);
  EXPECT_LT(ok, 20) << "calls in a row at 1/s with bursts of 2 must hit the limit";
  EXPECT_EQ(last.exit_code, 1);
  EXPECT_NE(last.err.find("rate limit exceeded"), std::string::npos) << last.err;
  EXPECT_NE(last.err.find("RESOURCE_EXHAUSTED"), std::string::npos) << last.err;
  // Another token is served meanwhile.
  Result admin = Cli(dir_, admin_, {"--server", address, "runs"});
  EXPECT_EQ(admin.exit_code, 0) << admin.err;
}

}  // namespace
}  // namespace pendulum::testing
