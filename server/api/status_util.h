#pragma once
// The one place grpc::Status is made on the server: absl::Status codes map
// one-to-one (they are numerically gRPC's) and messages are capped at 1 KiB
// so a huge validation report cannot blow up a response.

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace pendulum::api {

inline constexpr size_t kMaxStatusMessageBytes = 1024;

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace pendulum::api
