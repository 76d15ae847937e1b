// pendulum: the command-line client. Parses the global flags, opens one gRPC
// channel to the server and hands over to RunCli (client/cli.h).
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "client/cli.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto options = pendulum::client::ParseGlobalOptions(args, [](const char* name) { return std::getenv(name); });
  if (!options.ok()) {
    std::cerr << "pendulum: " << options.status().message() << "\n";
    return 2;
  }
  pendulum::client::CliContext ctx;
  ctx.out = &std::cout;
  ctx.err = &std::cerr;
  ctx.out_is_tty = ::isatty(STDOUT_FILENO) == 1;
  ctx.token = options->token;
  std::unique_ptr<pendulum::v1::RunService::Stub> runs;
  std::unique_ptr<pendulum::v1::AdminService::Stub> admin;
  if (!pendulum::client::IsHelpRequest(options->command)) {
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(64 << 20);
    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
    if (!options->tls_ca.empty()) {
      std::ifstream in(options->tls_ca, std::ios::binary);
      std::stringstream pem;
      pem << in.rdbuf();
      if (!in || pem.str().find("-----BEGIN") == std::string::npos) {
        std::cerr << "pendulum: --tls-ca: cannot read a PEM certificate from '" << options->tls_ca << "'\n";
        return 2;
      }
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = pem.str();
      credentials = grpc::SslCredentials(ssl);
      ctx.tls = true;
    }
    auto channel = grpc::CreateCustomChannel(options->server, credentials, channel_args);
    runs = pendulum::v1::RunService::NewStub(channel);
    admin = pendulum::v1::AdminService::NewStub(channel);
    ctx.runs = runs.get();
    ctx.admin = admin.get();
  }
  return pendulum::client::RunCli(options->command, ctx);
}
