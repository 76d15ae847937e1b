// Per-user GPU quotas and fair share through the Coordinator itself (no gRPC,
// no scheduler thread): real SQLite stores with a UserStore in Deps, a worker
// registered with 4 GPUs, and passes run by hand as TakeSnapshot → Placer →
// ApplyPlan, so each step is deterministic.
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "server/api/coordinator.h"
#include "server/scheduler/placer.h"
#include "server/store/database.h"
#include "tests/support/test_paths.h"
#include "tests/unit/server/scheduler/simulated_clock.h"

namespace pendulum::api {
namespace {

// Keeps what the coordinator sends to the worker.
class RecordingChannel : public WorkerChannel {
 public:
  void Send(const pendulum::v1::ServerMessage& message) override {
    if (message.has_assign()) assigned.push_back(message.assign());
  }
  void Close(const absl::Status&) override {}
  std::vector<pendulum::v1::Assignment> assigned;
};

pendulum::v1::RunSpec GpuSpec(uint32_t gpus, int32_t priority = 0) {
  pendulum::v1::RunSpec spec;
  spec.set_name("gpu-run");
  spec.mutable_model()->set_arch("mlp");
  spec.mutable_data()->set_dataset("synthetic");
  spec.mutable_optimizer()->set_type("sgd");
  spec.mutable_optimizer()->set_lr(0.1);
  spec.mutable_schedule()->set_epochs(1);
  spec.mutable_schedule()->set_batch_size(16);
  spec.mutable_resources()->set_gpus(gpus);
  spec.set_priority(priority);
  return spec;
}

class CoordinatorQuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = pendulum::testing::MakeTestTempDir();
    store::DatabaseOptions options;
    options.path = (dir_ / "pendulum.db").string();
    auto db = store::Database::Open(options);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    runs_ = std::make_unique<store::RunStore>(db_.get(), &clock_);
    workers_ = std::make_unique<store::WorkerStore>(db_.get(), &clock_);
    artifacts_ = std::make_unique<store::ArtifactStore>(db_.get(), &clock_);
    users_ = std::make_unique<store::UserStore>(db_.get(), &clock_);
    auto ingestor = store::MetricIngestor::Start(db_.get(), &clock_);
    ASSERT_TRUE(ingestor.ok()) << ingestor.status();
    ingestor_ = std::move(*ingestor);
    Coordinator::Deps deps{runs_.get(), workers_.get(), artifacts_.get(), ingestor_.get(), nullptr, &clock_,
                           users_.get()};
    coordinator_ = std::make_unique<Coordinator>(deps, CoordinatorOptions{});
    ASSERT_TRUE(coordinator_->Load().ok());

    pendulum::v1::RegisterRequest reg;
    reg.set_worker_id("w1");
    reg.set_hostname("w1.local");
    for (uint32_t i = 0; i < 4; ++i) {
      auto* gpu = reg.add_gpus();
      gpu->set_index(i);
      gpu->set_name("FakeGPU");
      gpu->set_memory_mb(16000);
    }
    ASSERT_TRUE(coordinator_->Register(reg).ok());
    pendulum::v1::Hello hello;
    hello.set_worker_id("w1");
    ASSERT_TRUE(coordinator_->OnHello(hello, &channel_).ok());
    // Runs are owned by known users; no quota until a test sets one.
    ASSERT_TRUE(users_->CreateUser("alice", pendulum::v1::USER).ok());
    ASSERT_TRUE(users_->CreateUser("bob", pendulum::v1::USER).ok());
  }
  void TearDown() override { coordinator_->CloseAllStreams(); }

  int64_t Submit(const std::string& user, const pendulum::v1::RunSpec& spec) {
    auth::Principal who{user, pendulum::v1::USER, 0};
    auto response = coordinator_->Submit(who, {spec}, false);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->run_ids(0) : 0;
  }
  void Pass() { coordinator_->ApplyPlan(scheduler::Placer::Place(coordinator_->TakeSnapshot())); }
  std::string Reason(int64_t id) { return runs_->GetRun(id).value().queue_reason(); }
  std::vector<int64_t> Assigned() {
    std::vector<int64_t> ids;
    for (const auto& a : channel_.assigned) ids.push_back(a.run_id());
    return ids;
  }

  std::filesystem::path dir_;
  pendulum::testing::SimulatedClock clock_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<store::RunStore> runs_;
  std::unique_ptr<store::WorkerStore> workers_;
  std::unique_ptr<store::ArtifactStore> artifacts_;
  std::unique_ptr<store::UserStore> users_;
  std::unique_ptr<store::MetricIngestor> ingestor_;
  std::unique_ptr<Coordinator> coordinator_;
  RecordingChannel channel_;
};

TEST_F(CoordinatorQuotaTest, QuotaFromTheUserTableCapsGpusAtOnce) {
  ASSERT_TRUE(users_->SetGpuQuota("alice", 2).ok());
  const int64_t a1 = Submit("alice", GpuSpec(1));
  const int64_t a2 = Submit("alice", GpuSpec(1));
  const int64_t a3 = Submit("alice", GpuSpec(1));
  const int64_t b1 = Submit("bob", GpuSpec(1));  // bob: no quota
  Pass();
  EXPECT_EQ(Assigned(), (std::vector<int64_t>{a1, b1, a2}));  // fair share interleaves alice and bob
  EXPECT_EQ(Reason(a3), "user quota reached (2/2 GPUs)");

  // Raising the quota takes effect on the next pass.
  ASSERT_TRUE(users_->SetGpuQuota("alice", 3).ok());
  Pass();
  EXPECT_EQ(Assigned(), (std::vector<int64_t>{a1, b1, a2, a3}));
}

TEST_F(CoordinatorQuotaTest, RecentGpuTimeOrdersUsersOfEqualPriority) {
  // Alice holds 4 GPUs for an hour; then a GPU frees up and both wait.
  std::vector<int64_t> alice;
  for (int i = 0; i < 4; ++i) alice.push_back(Submit("alice", GpuSpec(1)));
  Pass();
  ASSERT_EQ(Assigned().size(), 4u);
  const int64_t alice_next = Submit("alice", GpuSpec(1));
  clock_.Advance(absl::Hours(1));
  Pass();  // accounts the hour
  const int64_t bob_next = Submit("bob", GpuSpec(1));  // submitted after alice's
  pendulum::v1::RunStatus done;
  done.set_run_id(alice[0]);
  done.set_attempt(1);
  done.set_state(pendulum::v1::SUCCEEDED);
  coordinator_->OnRunStatus("w1", done);
  Pass();
  ASSERT_EQ(Assigned().size(), 5u);
  EXPECT_EQ(Assigned().back(), bob_next);
  EXPECT_EQ(Reason(alice_next), "needs 1 GPU, largest free block is 0");
}

}  // namespace
}  // namespace pendulum::api
