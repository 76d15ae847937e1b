// pendulum-server: parses flags, then either creates a token (no server
// needed) or runs Server until SIGTERM/SIGINT. Everything else lives in
// server/api so tests link exactly what this binary runs.

#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "server/api/server.h"
#include "server/api/server_options.h"
#include "server/store/database.h"
#include "server/store/token_store.h"

namespace {

int CreateToken(const pendulum::api::Command& command) {
  pendulum::store::DatabaseOptions options;
  options.path = command.options.db_path;
  auto db = pendulum::store::Database::Open(options);
  if (!db.ok()) {
    std::cerr << "pendulum-server token create: " << db.status().message() << "\n";
    return 1;
  }
  pendulum::store::TokenStore tokens(db->get(), pendulum::RealClock::Get());
  auto token = tokens.CreateToken(command.user, command.role, command.description);
  if (!token.ok()) {
    std::cerr << "pendulum-server token create: " << token.status().message() << "\n";
    return 1;
  }
  // The token alone on stdout, so scripts can capture it; it is shown once.
  std::cout << token->token << std::endl;
  std::cerr << "created token " << token->info.id() << " for user '" << command.user << "' ("
            << pendulum::v1::Role_Name(command.role) << ")\n";
  return 0;
}

int Serve(const pendulum::api::ServerOptions& options) {
  // Block the shutdown signals before any thread starts, so every thread
  // inherits the mask and only sigwait() below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = pendulum::api::Server::Start(options);
  if (!server.ok()) {
    std::cerr << "pendulum-server: " << server.status().message() << "\n";
    return 1;
  }
  // Tests and scripts parse this line to find a port chosen with :0.
  std::cout << "listening on " << (*server)->address() << std::endl;
  if (!options.metrics_listen.empty()) {
    const std::string& m = options.metrics_listen;
    std::cout << "metrics on " << m.substr(0, m.rfind(':')) << ":" << (*server)->metrics_port() << std::endl;
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  PENDULUM_LOG(INFO) << "received " << (signal_number == SIGTERM ? "SIGTERM" : "SIGINT")
                     << ", shutting down";
  (*server)->Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto command = pendulum::api::ParseCommandLine(args);
  if (!command.ok()) {
    std::cerr << "pendulum-server: " << command.status().message() << "\n";
    return 2;
  }
  switch (command->kind) {
    case pendulum::api::Command::Kind::kHelp:
      std::cout << pendulum::api::UsageText();
      return 0;
    case pendulum::api::Command::Kind::kTokenCreate:
      return CreateToken(*command);
    case pendulum::api::Command::Kind::kServe:
      return Serve(command->options);
  }
  return 2;
}
