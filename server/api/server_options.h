#pragma once
// ServerOptions: everything pendulum-server is configured with (one field per
// flag), and the command-line parser that fills it. Tests build the struct
// directly; main.cc parses argv.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "pendulum/v1/admin_service.pb.h"

namespace pendulum::api {

struct ServerOptions {
  // --db: SQLite file, created and migrated if absent.
  std::string db_path = "pendulum.db";
  // --listen: host:port for gRPC; port 0 picks a free port (reported by Server::port()).
  std::string listen = "127.0.0.1:7070";
  // --metrics-listen: host:port of the Prometheus /metrics exposer; empty = off.
  std::string metrics_listen;
  // --artifacts: directory for uploaded checkpoints; empty = "<db dir>/artifacts".
  std::string artifacts_dir;
  // --lease-seconds: a worker silent this long is LOST and its runs requeued. 1..3600.
  int lease_seconds = 15;
  // --heartbeat-seconds: how often workers send a heartbeat. 1..lease_seconds.
  int heartbeat_seconds = 3;
  // --max-message-bytes: largest gRPC message received or sent. 1 MiB + 64 KiB..1 GiB.
  int max_message_bytes = 8 << 20;
  // --tls-cert / --tls-key: PEM server certificate chain and private key;
  // both set = gRPC over TLS, both empty = plaintext (loopback/trusted networks).
  std::string tls_cert;
  std::string tls_key;
  // --rate-limit: sustained calls/s per bearer token (0 = no limit), with
  // bursts of --rate-burst calls. Calls beyond it get RESOURCE_EXHAUSTED.
  // 0 here (in-process servers, tests, benchmarks); the pendulum-server
  // binary defaults to kDefaultRateLimit / kDefaultRateBurst.
  double rate_limit_per_second = 0;
  double rate_burst = 0;
  // --cancel-grace-seconds: SIGTERM → SIGKILL grace the worker gives a cancelled trainer.
  int cancel_grace_seconds = 10;
  // How often leases are checked and gauges refreshed (not a flag).
  absl::Duration housekeeping_interval = absl::Milliseconds(500);
  // Source of time for leases and timestamps (tests inject a simulated one).
  const Clock* clock = RealClock::Get();
};

inline constexpr int kDefaultRateLimit = 500;
inline constexpr int kDefaultRateBurst = 1000;

// What the command line asks for.
struct Command {
  enum class Kind { kServe, kTokenCreate, kHelp };
  Kind kind = Kind::kServe;
  ServerOptions options;
  // token create
  std::string user;
  pendulum::v1::Role role = pendulum::v1::ROLE_UNSPECIFIED;
  std::string description;
};

// Parses `pendulum-server [flags]` and `pendulum-server token create --db FILE
// --user NAME --role admin|user|worker [--description TEXT]`. Flags take
// `--name=value` or `--name value`. INVALID_ARGUMENT naming the flag, the
// value and what is allowed.
absl::StatusOr<Command> ParseCommandLine(const std::vector<std::string>& args);

// The --help text.
std::string UsageText();

}  // namespace pendulum::api
