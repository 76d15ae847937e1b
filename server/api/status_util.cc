#include "server/api/status_util.h"

#include <string>

namespace pendulum::api {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message(status.message());
  if (message.size() > kMaxStatusMessageBytes) {
    static constexpr char kEllipsis[] = "... (truncated)";
    message.resize(kMaxStatusMessageBytes - (sizeof(kEllipsis) - 1));
    message.append(kEllipsis);
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message);
}

}  // namespace pendulum::api
