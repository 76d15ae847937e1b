#pragma once
// Shared set-up for store tests: a fresh SQLite file in the test's temp dir
// opened with the real embedded migrations, a settable clock, and helpers to
// build runs and trainer events.

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "pendulum/v1/events.pb.h"
#include "pendulum/v1/worker_service.pb.h"
#include "server/store/database.h"
#include "server/store/run_store.h"
#include "server/store/user_store.h"
#include "tests/support/test_paths.h"

namespace pendulum::store::testing {

// Deterministic time: starts at 2026-01-01 and moves only when told.
class ManualClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::FromUnixMillis(ms_.load()); }
  void AdvanceMs(int64_t ms) { ms_ += ms; }
  void SetMs(int64_t ms) { ms_ = ms; }

 private:
  std::atomic<int64_t> ms_{1767225600000};
};

#define ASSERT_OK(expr) ASSERT_TRUE((expr).ok()) << (expr)
#define EXPECT_OK(expr) EXPECT_TRUE((expr).ok()) << (expr)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) ASSERT_OK_AND_ASSIGN_IMPL_(STORE_TEST_CONCAT_(sor_, __LINE__), lhs, expr)
#define STORE_TEST_CONCAT_INNER_(a, b) a##b
#define STORE_TEST_CONCAT_(a, b) STORE_TEST_CONCAT_INNER_(a, b)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_TRUE(tmp.ok()) << tmp.status();           \
  lhs = std::move(tmp).value()

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = pendulum::testing::MakeTestTempDir();
    path_ = (dir_ / "pendulum.db").string();
    DatabaseOptions options;
    options.path = path_;
    auto db = Database::Open(options);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(db).value();
  }
  void TearDown() override {
    db_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Creates user `owner` (role USER) if needed and a QUEUED run named `name`.
  pendulum::v1::Run MakeRun(const std::string& name = "run", const std::string& owner = "alice") {
    UserStore users(db_.get(), &clock_);
    auto u = users.CreateUser(owner, pendulum::v1::USER);
    EXPECT_TRUE(u.ok() || absl::IsAlreadyExists(u.status())) << u.status();
    RunStore runs(db_.get(), &clock_);
    pendulum::v1::RunSpec spec;
    spec.set_name(name);
    spec.mutable_model()->set_arch("mlp");
    auto run = runs.CreateRun(spec, owner);
    EXPECT_TRUE(run.ok()) << run.status();
    return run.ok() ? *run : pendulum::v1::Run();
  }

  std::filesystem::path dir_;
  std::string path_;
  ManualClock clock_;
  std::unique_ptr<Database> db_;
};

// A Scalars event with seq, step and {name: value} pairs.
inline pendulum::v1::TrainerEvent ScalarEvent(uint64_t seq, int64_t step,
                                              std::initializer_list<std::pair<const char*, double>> values) {
  pendulum::v1::TrainerEvent e;
  e.set_seq(seq);
  e.set_time_unix_ms(1767225600000 + static_cast<int64_t>(seq));
  e.mutable_scalars()->set_step(step);
  for (const auto& [name, value] : values) (*e.mutable_scalars()->mutable_values())[name] = value;
  return e;
}

inline pendulum::v1::RunEvents Batch(int64_t run_id, uint32_t attempt,
                                     std::initializer_list<pendulum::v1::TrainerEvent> events) {
  pendulum::v1::RunEvents b;
  b.set_run_id(run_id);
  b.set_attempt(attempt);
  for (const auto& e : events) *b.add_events() = e;
  return b;
}

}  // namespace pendulum::store::testing
