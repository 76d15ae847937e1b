#pragma once
// The one place the client turns a grpc::Status into an absl::Status (the
// codes are numerically identical; the server's message is kept verbatim).
// Pure function, thread-safe.

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace pendulum::client {

absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace pendulum::client
