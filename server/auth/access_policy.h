#pragma once
// AccessPolicy: which roles may call which RPC, by gRPC full method name
// ("/pendulum.v1.RunService/SubmitRun"). The one table of who-may-call-what:
//   RunService    → user, admin
//   AdminService  → admin
//   WorkerService → worker (a worker token speaks nothing else)
// Unknown methods are denied. Pure and thread-safe.

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "server/auth/principal.h"

namespace pendulum::auth {

class AccessPolicy {
 public:
  // OK, or PERMISSION_DENIED naming the role and the method.
  static absl::Status Check(const Principal& principal, absl::string_view full_method);
};

}  // namespace pendulum::auth
