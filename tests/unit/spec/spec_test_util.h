#pragma once
// EXPECT_STATUS(status, code, substring): the status has `code` (an
// absl::StatusCode enumerator name, e.g. kInvalidArgument) and its message
// contains `substring` (typically the field path). Works on Status and StatusOr.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace pendulum::testing {

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace pendulum::testing

#define EXPECT_STATUS(expr, expected_code, substring)                                          \
  do {                                                                                \
    const ::absl::Status pendulum_s_ = ::pendulum::testing::StatusOf(expr);         \
    EXPECT_EQ(pendulum_s_.code(), ::absl::StatusCode::expected_code) << pendulum_s_;           \
    EXPECT_NE(std::string(pendulum_s_.message()).find(substring), std::string::npos) \
        << "message lacks \"" << (substring) << "\":\n"                              \
        << pendulum_s_.message();                                                     \
  } while (0)
