#pragma once
// gtest fixture for worker integration/fault tests: a temp dir, a real
// pendulum-server on a loopback port with its own SQLite file, tokens, a
// RunService client, and helpers to start pendulum-worker processes.
// Tests that need pendulum-train skip (loudly) when it was not built
// (PENDULUM_BUILD_TRAIN=OFF).
#include <signal.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/worker/cluster.h"
#include "tests/support/test_paths.h"

namespace pendulum::cluster {

class WorkerClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(ServerBinary()) || !fs::exists(WorkerBinary())) {
      GTEST_SKIP() << "needs " << ServerBinary() << " and " << WorkerBinary();
    }
    dir_ = testing::MakeTestTempDir();
    config_.db = dir_ / "pendulum.db";
    config_.artifacts = dir_ / "artifacts";
    auto worker_token = CreateToken(config_.db, "worker", "worker", dir_);
    ASSERT_TRUE(worker_token.ok()) << worker_token.status();
    worker_token_ = *worker_token;
    auto user_token = CreateToken(config_.db, "alice", "user", dir_);
    ASSERT_TRUE(user_token.ok()) << user_token.status();
    user_token_ = *user_token;
    StartServer();
  }

  void RequireTrainer() {
    if (!fs::exists(TrainerBinary())) {
      GTEST_SKIP() << "pendulum-train not built (" << TrainerBinary()
                   << "); configure with PENDULUM_BUILD_TRAIN=ON to run this test";
    }
  }

  void StartServer() {
    auto server = Server::Start(config_, dir_ / absl::StrCat("server-", ++server_starts_, ".log"));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    config_.port = server_->port();  // a restart reuses the same port
    client_ = std::make_unique<Client>(server_->address(), user_token_);
  }

  Process* StartWorker(const std::string& id, const std::string& trainer = "",
                       std::vector<std::pair<std::string, std::string>> env = {}) {
    WorkerConfig wc;
    wc.server = server_->address();
    wc.token = worker_token_;
    wc.id = id;
    wc.work_dir = dir_ / ("work-" + id);
    wc.trainer = trainer;
    wc.env = std::move(env);
    auto worker = cluster::StartWorker(wc, dir_ / (id + ".log"));
    EXPECT_TRUE(worker.ok()) << worker.status();
    if (!worker.ok()) return nullptr;
    auto connected = (*worker)->WaitForLog("connected as " + id, absl::Seconds(30));
    EXPECT_TRUE(connected.ok()) << connected.status();
    workers_.push_back(std::move(*worker));
    return workers_.back().get();
  }

  // fake_trainer (tests/unit/daemon): speaks the trainer protocol without
  // LibTorch, so the pipeline is tested in builds without pendulum-train.
  static std::string FakeTrainer() {
    return (BuildDir() / "tests" / "unit" / "daemon" / "fake_trainer").string();
  }

  static std::string QuickSpec() {
    return ReadFile(testing::SourceDir() / "examples" / "quick_synthetic.yaml");
  }

  // Everything a failing test needs to see.
  std::string Logs() {
    std::string out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".log") {
        absl::StrAppend(&out, "==== ", e.path().filename().string(), "\n", ReadFile(e.path()));
      }
    }
    return out;
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << Logs();
  }

  fs::path dir_;
  ServerConfig config_;
  std::string worker_token_, user_token_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Client> client_;
  std::vector<std::unique_ptr<Process>> workers_;
  int server_starts_ = 0;
};

}  // namespace pendulum::cluster
