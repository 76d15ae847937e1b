#include "server/api/server_options.h"

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pendulum::api {
namespace {

absl::Status ParseInt(const std::string& flag, const std::string& value, int min, int max, int* out) {
  int v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < min || v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": got '", value, "', must be an integer in ", min, "..", max));
  }
  *out = v;
  return absl::OkStatus();
}

}  // namespace

std::string UsageText() {
  return R"(pendulum-server: the Pendulum coordinator (gRPC RunService, AdminService, WorkerService).

Usage:
  pendulum-server [flags]
  pendulum-server token create --db FILE --user NAME --role admin|user|worker [--description TEXT]
      Creates a token (and the user, if new) and prints it once on stdout.

Flags:
  --db FILE                 SQLite database (default pendulum.db; created and migrated)
  --listen HOST:PORT        gRPC address (default 127.0.0.1:7070; port 0 = pick a free one).
                            Prints "listening on HOST:PORT" once serving.
  --metrics-listen HOST:PORT  Prometheus /metrics exposer (default off)
  --artifacts DIR           checkpoint store (default <db dir>/artifacts)
  --lease-seconds N         worker lease, 1..3600 (default 15)
  --heartbeat-seconds N     worker heartbeat interval, 1..lease (default 3)
  --max-message-bytes N     largest gRPC message (default 8388608)
  --cancel-grace-seconds N  SIGTERM→SIGKILL grace for cancelled trainers (default 10)
  --tls-cert FILE           PEM certificate (chain) of the server; with --tls-key, serve TLS only
  --tls-key FILE            PEM private key of --tls-cert
  --rate-limit N            calls per second per token, 0 = off (default 500)
  --rate-burst N            calls a token may make in a burst (default 1000)
  --help                    this text
SIGTERM or SIGINT shuts down cleanly.
)";
}

absl::StatusOr<Command> ParseCommandLine(const std::vector<std::string>& args) {
  Command command;
  size_t i = 0;
  if (args.size() >= 2 && args[0] == "token") {
    if (args[1] != "create") {
      return absl::InvalidArgumentError(
          absl::StrCat("token: unknown subcommand '", args[1], "'; available: create"));
    }
    command.kind = Command::Kind::kTokenCreate;
    i = 2;
  } else if (!args.empty() && args[0] == "token") {
    return absl::InvalidArgumentError("token: missing subcommand; available: create");
  }
  const bool token = command.kind == Command::Kind::kTokenCreate;
  std::map<std::string, std::string> values;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      command.kind = Command::Kind::kHelp;
      return command;
    }
    if (!absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'; see --help"));
    }
    std::string name = arg.substr(2);
    std::string value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, ": missing value"));
      }
      value = args[++i];
    }
    static const char* const kServeFlags[] = {"db", "listen", "metrics-listen", "artifacts",
                                              "lease-seconds", "heartbeat-seconds",
                                              "max-message-bytes", "cancel-grace-seconds",
                                              "tls-cert", "tls-key", "rate-limit", "rate-burst"};
    static const char* const kTokenFlags[] = {"db", "user", "role", "description"};
    bool known = false;
    if (token) {
      for (const char* f : kTokenFlags) known = known || name == f;
    } else {
      for (const char* f : kServeFlags) known = known || name == f;
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, "; see --help"));
    }
    values[name] = value;
  }

  ServerOptions& o = command.options;
  if (values.count("db")) o.db_path = values["db"];
  if (o.db_path.empty()) return absl::InvalidArgumentError("--db: empty");
  if (token) {
    command.user = values["user"];
    if (command.user.empty()) return absl::InvalidArgumentError("--user: required for token create");
    const std::string& role = values["role"];
    if (role == "admin") command.role = pendulum::v1::ADMIN;
    else if (role == "user") command.role = pendulum::v1::USER;
    else if (role == "worker") command.role = pendulum::v1::WORKER;
    else {
      return absl::InvalidArgumentError(
          absl::StrCat("--role: got '", role, "', must be admin, user or worker"));
    }
    command.description = values.count("description") ? values["description"] : "pendulum-server token create";
    return command;
  }
  if (values.count("listen")) o.listen = values["listen"];
  if (o.listen.empty() || o.listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--listen: got '", o.listen, "', must be HOST:PORT"));
  }
  if (values.count("metrics-listen")) o.metrics_listen = values["metrics-listen"];
  if (values.count("artifacts")) o.artifacts_dir = values["artifacts"];
  absl::Status s;
  if (values.count("lease-seconds") &&
      !(s = ParseInt("lease-seconds", values["lease-seconds"], 1, 3600, &o.lease_seconds)).ok()) {
    return s;
  }
  if (values.count("heartbeat-seconds") &&
      !(s = ParseInt("heartbeat-seconds", values["heartbeat-seconds"], 1, 3600, &o.heartbeat_seconds)).ok()) {
    return s;
  }
  if (o.heartbeat_seconds > o.lease_seconds) {
    return absl::InvalidArgumentError(absl::StrCat("--heartbeat-seconds: got ", o.heartbeat_seconds,
                                                   ", must be <= --lease-seconds (", o.lease_seconds, ")"));
  }
  if (values.count("max-message-bytes") &&
      !(s = ParseInt("max-message-bytes", values["max-message-bytes"], (1 << 20) + (64 << 10), 1 << 30,
                     &o.max_message_bytes))
           .ok()) {
    return s;
  }
  if (values.count("cancel-grace-seconds") &&
      !(s = ParseInt("cancel-grace-seconds", values["cancel-grace-seconds"], 0, 3600,
                     &o.cancel_grace_seconds))
           .ok()) {
    return s;
  }
  if (values.count("tls-cert")) o.tls_cert = values["tls-cert"];
  if (values.count("tls-key")) o.tls_key = values["tls-key"];
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        o.tls_cert.empty() ? "--tls-cert" : "--tls-key", ": required when ",
        o.tls_cert.empty() ? "--tls-key" : "--tls-cert", " is given (TLS needs both certificate and key)"));
  }
  int rate = kDefaultRateLimit;
  int burst = kDefaultRateBurst;
  if (values.count("rate-limit") && !(s = ParseInt("rate-limit", values["rate-limit"], 0, 1000000, &rate)).ok()) {
    return s;
  }
  if (values.count("rate-burst") && !(s = ParseInt("rate-burst", values["rate-burst"], 1, 1000000, &burst)).ok()) {
    return s;
  }
  o.rate_limit_per_second = rate;
  o.rate_burst = burst;
  return command;
}

}  // namespace pendulum::api
