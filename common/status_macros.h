#pragma once
// Small versions of Abseil's status macros (our Abseil 20220623 predates
// absl/status/status_macros.h).
//   PENDULUM_RETURN_IF_ERROR(expr);          returns the Status if not ok
//   PENDULUM_ASSIGN_OR_RETURN(lhs, expr);    unwraps a StatusOr or returns its Status

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PENDULUM_STATUS_CONCAT_INNER_(a, b) a##b
#define PENDULUM_STATUS_CONCAT_(a, b) PENDULUM_STATUS_CONCAT_INNER_(a, b)

#define PENDULUM_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    ::absl::Status pendulum_status_ = (expr);            \
    if (!pendulum_status_.ok()) return pendulum_status_; \
  } while (0)

#define PENDULUM_ASSIGN_OR_RETURN(lhs, expr) \
  PENDULUM_ASSIGN_OR_RETURN_IMPL_(PENDULUM_STATUS_CONCAT_(pendulum_statusor_, __LINE__), lhs, expr)

#define PENDULUM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()
