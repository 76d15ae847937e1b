#pragma once
// Authenticates and authorizes one RPC from its server context: reads the
// `authorization` metadata, looks the token up, and checks the role against
// AccessPolicy for `method` (the gRPC full method name). Thread-safe.

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "server/auth/access_policy.h"
#include "server/auth/authenticator.h"

namespace pendulum::api {

inline absl::StatusOr<auth::Principal> AuthorizeCall(const auth::Authenticator& authenticator,
                                                     const grpc::CallbackServerContext* context,
                                                     absl::string_view method) {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  const bool present = it != metadata.end();
  absl::string_view header = present ? absl::string_view(it->second.data(), it->second.size()) : "";
  absl::StatusOr<auth::Principal> who = authenticator.Authenticate(present, header);
  if (!who.ok()) return who.status();
  absl::Status allowed = auth::AccessPolicy::Check(*who, method);
  if (!allowed.ok()) return allowed;
  return who;
}

}  // namespace pendulum::api
