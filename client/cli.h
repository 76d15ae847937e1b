#pragma once
// The `pendulum` command line: global flags (--server, --token, from
// PENDULUM_SERVER / PENDULUM_TOKEN otherwise), help texts and dispatch to the
// commands in commands.h. main.cc only builds the channel and stubs; tests can
// call RunCli with stubs of their own. Exit codes: 0 ok, 1 the command failed
// (message on stderr), 2 usage error.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/cli_context.h"

namespace pendulum::client {

inline constexpr char kDefaultServer[] = "127.0.0.1:7070";

struct GlobalOptions {
  std::string server;  // --server, else $PENDULUM_SERVER, else kDefaultServer
  std::string token;   // --token, else $PENDULUM_TOKEN
  std::string tls_ca;  // --tls-ca PEM file, else $PENDULUM_TLS_CA; set = dial with TLS
  std::vector<std::string> command;  // the command and its own arguments
};

// Pulls --server/--token/--tls-ca out of `args` (anywhere on the line, before a bare
// "--"); `getenv` is injectable for tests.
absl::StatusOr<GlobalOptions> ParseGlobalOptions(
    const std::vector<std::string>& args,
    const std::function<const char*(const char*)>& getenv);

// Usage of one command ("" = the overview), as printed by --help.
std::string CommandHelp(const std::string& command);

// True if the command needs no server (help, or --help anywhere).
bool IsHelpRequest(const std::vector<std::string>& command);

// Runs `command` (name first). ctx.runs/admin may be null for help requests.
int RunCli(const std::vector<std::string>& command, const CliContext& ctx);

}  // namespace pendulum::client
