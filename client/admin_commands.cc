// workers, drain/undrain, token create/list/revoke, user create/list/quota.
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/arg_parser.h"
#include "client/commands.h"
#include "client/run_format.h"
#include "client/status_conversion.h"
#include "client/table_printer.h"

namespace pendulum::client {
namespace {

std::string WorkerStateName(v1::WorkerState s) {
  switch (s) {
    case v1::WORKER_ONLINE: return "ONLINE";
    case v1::WORKER_DRAINING: return "DRAINING";
    case v1::WORKER_LOST: return "LOST";
    case v1::WORKER_OFFLINE: return "OFFLINE";
    default: return "UNKNOWN";
  }
}

std::string RoleName(v1::Role r) {
  switch (r) {
    case v1::ADMIN: return "admin";
    case v1::USER: return "user";
    case v1::WORKER: return "worker";
    default: return "unknown";
  }
}

absl::Status TokenCreate(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddValueFlag("user");
  p.AddValueFlag("role");
  p.AddValueFlag("description");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  if (!p.positional().empty()) return absl::InvalidArgumentError("token create: takes no positional arguments");
  if (p.Get("user").empty()) return absl::InvalidArgumentError("--user: required (the token's user)");
  const std::string role = absl::AsciiStrToLower(p.Get("role", "user"));
  v1::CreateTokenRequest request;
  request.set_user(p.Get("user"));
  if (role == "admin") {
    request.set_role(v1::ADMIN);
  } else if (role == "user") {
    request.set_role(v1::USER);
  } else if (role == "worker") {
    request.set_role(v1::WORKER);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--role: got '", role, "', must be admin, user or worker"));
  }
  request.set_description(p.Get("description", "created with the pendulum CLI"));
  v1::CreateTokenResponse response;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.admin->CreateToken(call.get(), request, &response)); !s.ok()) return s;
  // The token alone on stdout so scripts can capture it; it is shown only once.
  *ctx.out << response.token() << "\n";
  *ctx.err << "created token " << response.token_id() << " for " << request.user() << " (" << role << ")\n";
  return absl::OkStatus();
}

absl::Status TokenList(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddValueFlag("user");
  p.AddBoolFlag("json");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  v1::ListTokensRequest request;
  request.set_user(p.Get("user"));
  v1::ListTokensResponse response;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.admin->ListTokens(call.get(), request, &response)); !s.ok()) return s;
  if (p.Has("json")) {
    *ctx.out << ToJson(response) << "\n";
    return absl::OkStatus();
  }
  TablePrinter table({"ID", "USER", "ROLE", "CREATED", "LAST USED", "REVOKED", "DESCRIPTION"});
  for (const v1::TokenInfo& t : response.tokens()) {
    table.AddRow({absl::StrCat(t.id()), t.user(), RoleName(t.role()), FormatTime(t.created_unix_ms()),
                  FormatTime(t.last_used_unix_ms()), t.revoked() ? "yes" : "no", t.description()});
  }
  table.Print(*ctx.out);
  return absl::OkStatus();
}

absl::Status TokenRevoke(const Args& args, const CliContext& ctx) {
  ArgParser p;
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  int64_t id = 0;
  if (p.positional().size() != 1 || !absl::SimpleAtoi(p.positional()[0], &id) || id <= 0) {
    return absl::InvalidArgumentError("token revoke: expected one TOKEN_ID (see pendulum token list)");
  }
  v1::RevokeTokenRequest request;
  request.set_token_id(id);
  v1::RevokeTokenResponse response;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.admin->RevokeToken(call.get(), request, &response)); !s.ok()) return s;
  *ctx.out << "revoked token " << id << "\n";
  return absl::OkStatus();
}

absl::Status ParseRole(const std::string& text, v1::Role* role) {
  const std::string r = absl::AsciiStrToLower(text);
  if (r == "admin") {
    *role = v1::ADMIN;
  } else if (r == "user") {
    *role = v1::USER;
  } else if (r == "worker") {
    *role = v1::WORKER;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--role: got '", text, "', must be admin, user or worker"));
  }
  return absl::OkStatus();
}

absl::Status ParseQuota(const std::string& text, uint32_t* quota) {
  if (!absl::SimpleAtoi(text, quota) || *quota > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("GPU quota: got '", text, "', must be a whole number of GPUs from 0 (unlimited) to 100000"));
  }
  return absl::OkStatus();
}

void PrintUsers(const std::vector<v1::User>& users, const CliContext& ctx) {
  TablePrinter table({"NAME", "ROLE", "GPU QUOTA", "CREATED"});
  for (const v1::User& u : users) {
    table.AddRow({u.name(), RoleName(u.role()), u.gpu_quota() == 0 ? "unlimited" : absl::StrCat(u.gpu_quota()),
                  FormatTime(u.created_unix_ms())});
  }
  table.Print(*ctx.out);
}

absl::Status UserCreate(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddValueFlag("role");
  p.AddValueFlag("gpu-quota");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  if (p.positional().size() != 1) return absl::InvalidArgumentError("user create: expected one NAME");
  v1::CreateUserRequest request;
  request.set_name(p.positional()[0]);
  v1::Role role = v1::USER;
  if (absl::Status s = ParseRole(p.Get("role", "user"), &role); !s.ok()) return s;
  request.set_role(role);
  uint32_t quota = 0;
  if (absl::Status s = ParseQuota(p.Get("gpu-quota", "0"), &quota); !s.ok()) return s;
  request.set_gpu_quota(quota);
  v1::User user;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.admin->CreateUser(call.get(), request, &user)); !s.ok()) return s;
  PrintUsers({user}, ctx);
  return absl::OkStatus();
}

absl::Status UserList(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddBoolFlag("json");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  if (!p.positional().empty()) return absl::InvalidArgumentError("user list: takes no positional arguments");
  v1::ListUsersResponse response;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.admin->ListUsers(call.get(), v1::ListUsersRequest(), &response));
      !s.ok()) {
    return s;
  }
  if (p.Has("json")) {
    *ctx.out << ToJson(response) << "\n";
    return absl::OkStatus();
  }
  PrintUsers({response.users().begin(), response.users().end()}, ctx);
  return absl::OkStatus();
}

absl::Status UserQuota(const Args& args, const CliContext& ctx) {
  ArgParser p;
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  if (p.positional().size() != 2) return absl::InvalidArgumentError("user quota: expected NAME N");
  v1::SetUserQuotaRequest request;
  request.set_name(p.positional()[0]);
  uint32_t quota = 0;
  if (absl::Status s = ParseQuota(p.positional()[1], &quota); !s.ok()) return s;
  request.set_gpu_quota(quota);
  v1::User user;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.admin->SetUserQuota(call.get(), request, &user)); !s.ok()) return s;
  PrintUsers({user}, ctx);
  return absl::OkStatus();
}

absl::Status SetDrain(const Args& args, const CliContext& ctx, bool drain) {
  const char* verb = drain ? "drain" : "undrain";
  ArgParser p;
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  if (p.positional().size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(verb, ": expected one WORKER id (see pendulum workers)"));
  }
  v1::DrainWorkerRequest request;
  request.set_worker_id(p.positional()[0]);
  v1::WorkerInfo worker;
  auto call = ctx.NewCall();
  absl::Status s = FromGrpcStatus(drain ? ctx.admin->DrainWorker(call.get(), request, &worker)
                                        : ctx.admin->UndrainWorker(call.get(), request, &worker));
  if (!s.ok()) return s;
  *ctx.out << "worker " << worker.id() << ": " << WorkerStateName(worker.state()) << "\n";
  return absl::OkStatus();
}

}  // namespace

absl::Status WorkersCommand(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddBoolFlag("json");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  v1::ListWorkersRequest request;
  v1::ListWorkersResponse response;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.runs->ListWorkers(call.get(), request, &response)); !s.ok()) return s;
  if (p.Has("json")) {
    *ctx.out << ToJson(response) << "\n";
    return absl::OkStatus();
  }
  TablePrinter table(
      {"ID", "HOST", "STATE", "GPUS FREE/TOTAL", "SLOTS FREE/TOTAL", "RUNNING", "LAST HEARTBEAT", "NOTE"});
  for (const v1::WorkerInfo& w : response.workers()) {
    table.AddRow({w.id(), w.hostname(), WorkerStateName(w.state()), absl::StrCat(w.free_gpus(), "/", w.gpus_size()),
                  absl::StrCat(w.free_slots(), "/", w.slots()),
                  w.running_runs().empty() ? "-" : absl::StrJoin(w.running_runs(), ","),
                  FormatTime(w.last_heartbeat_unix_ms()), w.note().empty() ? "-" : w.note()});
  }
  table.Print(*ctx.out);
  return absl::OkStatus();
}

absl::Status TokenCommand(const Args& args, const CliContext& ctx) {
  if (args.empty()) return absl::InvalidArgumentError("token: missing subcommand; one of create, list, revoke");
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "create") return TokenCreate(rest, ctx);
  if (args[0] == "list") return TokenList(rest, ctx);
  if (args[0] == "revoke") return TokenRevoke(rest, ctx);
  return absl::InvalidArgumentError(
      absl::StrCat("token: unknown subcommand '", args[0], "'; one of create, list, revoke"));
}

absl::Status UserCommand(const Args& args, const CliContext& ctx) {
  if (args.empty()) return absl::InvalidArgumentError("user: missing subcommand; one of create, list, quota");
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "create") return UserCreate(rest, ctx);
  if (args[0] == "list") return UserList(rest, ctx);
  if (args[0] == "quota") return UserQuota(rest, ctx);
  return absl::InvalidArgumentError(
      absl::StrCat("user: unknown subcommand '", args[0], "'; one of create, list, quota"));
}

absl::Status DrainCommand(const Args& args, const CliContext& ctx) { return SetDrain(args, ctx, true); }
absl::Status UndrainCommand(const Args& args, const CliContext& ctx) { return SetDrain(args, ctx, false); }

}  // namespace pendulum::client
