// Connection: busy maps to UNAVAILABLE after the configured wait; a waiting
// writer gets the lock soon after it is released.
#include "server/store/connection.h"

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "tests/unit/server/store/store_test_env.h"

namespace pendulum::store {
namespace {

using testing::StoreTest;

class ConnectionTest : public StoreTest {};

TEST_F(ConnectionTest, BusyIsUnavailableAfterTheTimeout) {
  ConnectionOptions quick;
  quick.busy_timeout_ms = 100;
  ASSERT_OK_AND_ASSIGN(auto holder, Connection::Open(path_, {}));
  ASSERT_OK_AND_ASSIGN(auto waiter, Connection::Open(path_, quick));
  Transaction lock(holder.get());
  ASSERT_OK(lock.status());
  const auto t0 = std::chrono::steady_clock::now();
  absl::Status s = waiter->Exec("INSERT INTO metric_names(name) VALUES ('x')");
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_GE(waited, std::chrono::milliseconds(90));
  EXPECT_LT(waited, std::chrono::milliseconds(2000));
}

TEST_F(ConnectionTest, WaitingWriterProceedsWhenTheLockIsReleased) {
  ASSERT_OK_AND_ASSIGN(auto holder, Connection::Open(path_, {}));
  ASSERT_OK_AND_ASSIGN(auto waiter, Connection::Open(path_, {}));
  auto lock = std::make_unique<Transaction>(holder.get());
  ASSERT_OK(lock->status());
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ASSERT_OK(lock->Commit());
  });
  absl::Status s = waiter->Exec("INSERT INTO metric_names(name) VALUES ('y')");
  release.join();
  EXPECT_OK(s);
}

TEST_F(ConnectionTest, ConstraintErrorsMapToCanonicalCodes) {
  ASSERT_OK_AND_ASSIGN(auto c, Connection::Open(path_, {}));
  ASSERT_OK(c->Exec("INSERT INTO metric_names(name) VALUES ('dup')"));
  EXPECT_EQ(c->Exec("INSERT INTO metric_names(name) VALUES ('dup')").code(), absl::StatusCode::kAlreadyExists);
  // Foreign key on: a token for a user that does not exist.
  EXPECT_EQ(c->Exec("INSERT INTO tokens(user_id, role, token_sha256, created_ms) VALUES (999, 2, 'h', 0)").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(c->Exec("NOT SQL").code(), absl::StatusCode::kInternal);
  ConnectionOptions bad;
  bad.synchronous = "OFF";
  EXPECT_EQ(Connection::Open(path_, bad).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pendulum::store
