#pragma once
// What every `pendulum` command needs: the stubs (interfaces, so tests can
// drive a real server or a mock), the bearer token, where to print, and the
// per-call deadline. Owned by the caller; commands only borrow it. One command
// runs at a time on one thread.

#include <chrono>
#include <memory>
#include <ostream>
#include <string>

#include "grpcpp/client_context.h"
#include "pendulum/v1/admin_service.grpc.pb.h"
#include "pendulum/v1/run_service.grpc.pb.h"

namespace pendulum::client {

struct CliContext {
  v1::RunService::StubInterface* runs = nullptr;
  v1::AdminService::StubInterface* admin = nullptr;
  std::string token;       // sent as "authorization: Bearer <token>" when non-empty
  std::ostream* out = nullptr;  // results (run ids, tables, JSON)
  std::ostream* err = nullptr;  // diagnostics
  bool out_is_tty = false;      // live progress bar for `watch`
  bool tls = false;             // the channel uses TLS (--tls-ca); only for error hints
  std::chrono::seconds deadline{30};  // unary calls; streams have none

  // A ClientContext carrying the token, with the unary deadline unless `stream`.
  std::unique_ptr<grpc::ClientContext> NewCall(bool stream = false) const {
    auto call = std::make_unique<grpc::ClientContext>();
    if (!token.empty()) call->AddMetadata("authorization", "Bearer " + token);
    if (!stream) call->set_deadline(std::chrono::system_clock::now() + deadline);
    return call;
  }
};

}  // namespace pendulum::client
