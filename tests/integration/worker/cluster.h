#pragma once
// Real processes on loopback for the worker's integration/fault tests and the
// pipeline benchmark: pendulum-server (own SQLite file, port 0 or a fixed port
// to restart on), pendulum-worker, tokens, and a RunService client. gtest-free
// so bench/ can use it too. Header-only; each object owns its process
// (ChildProcess: SIGKILL + reap on destruction).
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "pendulum/v1/run_service.grpc.pb.h"
#include "worker/daemon/child_process.h"

namespace pendulum::cluster {

namespace fs = std::filesystem;

// $PENDULUM_BINARY_DIR (set by ctest), else the current directory.
inline fs::path BuildDir() {
  const char* env = std::getenv("PENDULUM_BINARY_DIR");
  return env ? fs::path(env) : fs::current_path();
}

inline std::string ServerBinary() { return (BuildDir() / "server" / "pendulum-server").string(); }
inline std::string WorkerBinary() { return (BuildDir() / "worker" / "daemon" / "pendulum-worker").string(); }
inline std::string TrainerBinary() { return (BuildDir() / "worker" / "train" / "pendulum-train").string(); }

inline std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a program to completion and returns its stdout (stderr goes to `log`).
inline absl::StatusOr<std::string> RunAndCapture(const std::vector<std::string>& argv, const fs::path& dir) {
  daemon::ChildOptions options;
  options.argv = argv;
  options.stdout_path = (dir / "capture.out").string();
  options.stderr_path = (dir / "capture.err").string();
  fs::remove(options.stdout_path);
  auto child = daemon::ChildProcess::Spawn(options);
  if (!child.ok()) return child.status();
  const daemon::ExitStatus exit = (*child)->Wait();
  if (!exit.ok()) {
    return absl::InternalError(absl::StrCat(argv[0], " ", exit.ToString(), ": ", ReadFile(options.stderr_path)));
  }
  return ReadFile(options.stdout_path);
}

inline absl::StatusOr<std::string> CreateToken(const fs::path& db, const std::string& user,
                                               const std::string& role, const fs::path& dir) {
  auto out = RunAndCapture({ServerBinary(), "token", "create", "--db", db.string(), "--user", user, "--role", role},
                           dir);
  if (!out.ok()) return out.status();
  std::string token = *out;
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) return absl::InternalError("token create printed nothing");
  return token;
}

// One long-running process with its combined output in a log file.
class Process {
 public:
  static absl::StatusOr<std::unique_ptr<Process>> Start(std::vector<std::string> argv, const fs::path& log,
                                                        std::vector<std::pair<std::string, std::string>> env = {}) {
    daemon::ChildOptions options;
    options.argv = std::move(argv);
    options.stdout_path = log.string();
    options.stderr_path = log.string();
    options.env_set = std::move(env);
    auto child = daemon::ChildProcess::Spawn(options);
    if (!child.ok()) return child.status();
    return std::unique_ptr<Process>(new Process(std::move(*child), log));
  }
  pid_t pid() const { return child_->pid(); }
  std::string Log() const { return ReadFile(log_); }
  // SIGKILL, no chance to clean up (the fault tests' "crash").
  daemon::ExitStatus Kill() {
    child_->SignalGroup(SIGKILL);
    return child_->Wait();
  }
  daemon::ExitStatus Stop() { return child_->Terminate(absl::Seconds(10)); }
  // Waits until the log contains a match of `pattern`; returns the first group.
  absl::StatusOr<std::string> WaitForLog(const std::string& pattern, absl::Duration timeout) const {
    const std::regex re(pattern);
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      std::smatch m;
      const std::string log = Log();
      if (std::regex_search(log, m, re)) return m.size() > 1 ? m[1].str() : m[0].str();
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(absl::StrCat("no '", pattern, "' in ", log_.string(), ":\n", log));
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

 private:
  Process(std::unique_ptr<daemon::ChildProcess> child, fs::path log) : child_(std::move(child)), log_(std::move(log)) {}
  std::unique_ptr<daemon::ChildProcess> child_;
  fs::path log_;
};

struct ServerConfig {
  fs::path db;
  fs::path artifacts;
  int port = 0;            // 0: any free port (read back from the log)
  int lease_seconds = 6;
  int heartbeat_seconds = 1;
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerConfig& config, const fs::path& log) {
    auto process = Process::Start(
        {ServerBinary(), "--db", config.db.string(), "--artifacts", config.artifacts.string(), "--listen",
         absl::StrCat("127.0.0.1:", config.port), "--lease-seconds", std::to_string(config.lease_seconds),
         "--heartbeat-seconds", std::to_string(config.heartbeat_seconds)},
        log);
    if (!process.ok()) return process.status();
    auto port = (*process)->WaitForLog("listening on 127\\.0\\.0\\.1:([0-9]+)", absl::Seconds(30));
    if (!port.ok()) return port.status();
    auto server = std::unique_ptr<Server>(new Server());
    server->process_ = std::move(*process);
    server->port_ = std::atoi(port->c_str());
    return server;
  }
  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  Process& process() { return *process_; }

 private:
  Server() = default;
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

struct WorkerConfig {
  std::string server;
  std::string token;
  std::string id;
  fs::path work_dir;
  std::string trainer;     // empty: pendulum-train of this build
  int slots = 1;
  std::vector<std::pair<std::string, std::string>> env;
};

inline absl::StatusOr<std::unique_ptr<Process>> StartWorker(const WorkerConfig& config, const fs::path& log) {
  auto env = config.env;
  env.emplace_back("PENDULUM_TOKEN", config.token);
  return Process::Start({WorkerBinary(), "--server", config.server, "--worker-id", config.id, "--work-dir",
                         config.work_dir.string(), "--trainer",
                         config.trainer.empty() ? TrainerBinary() : config.trainer, "--slots",
                         std::to_string(config.slots)},
                        log, env);
}

// RunService client with a user token.
class Client {
 public:
  Client(const std::string& address, std::string token)
      : stub_(v1::RunService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))),
        token_(std::move(token)) {}

  std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(10)) const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + token_);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return ctx;
  }
  absl::StatusOr<int64_t> Submit(const std::string& spec_yaml, const std::vector<std::string>& overrides = {}) {
    v1::SubmitRunRequest request;
    request.set_spec_text(spec_yaml);
    for (const auto& o : overrides) request.add_overrides(o);
    v1::SubmitRunResponse response;
    auto ctx = Context();
    grpc::Status s = stub_->SubmitRun(ctx.get(), request, &response);
    if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    if (response.run_ids_size() != 1) return absl::InternalError("SubmitRun returned no single run id");
    return response.run_ids(0);
  }
  absl::StatusOr<v1::Run> Get(int64_t run_id) {
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    v1::Run run;
    auto ctx = Context();
    grpc::Status s = stub_->GetRun(ctx.get(), request, &run);
    if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    return run;
  }
  absl::StatusOr<v1::Run> Cancel(int64_t run_id) {
    v1::CancelRunRequest request;
    request.set_run_id(run_id);
    request.set_reason("test cancel");
    v1::Run run;
    auto ctx = Context();
    grpc::Status s = stub_->CancelRun(ctx.get(), request, &run);
    if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    return run;
  }
  // Polls GetRun until `done(run)` or the timeout; server restarts are ridden out.
  template <typename Pred>
  absl::StatusOr<v1::Run> WaitFor(int64_t run_id, Pred done, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    absl::Status last = absl::DeadlineExceededError("never polled");
    while (absl::Now() < deadline) {
      auto run = Get(run_id);
      if (run.ok() && done(*run)) return run;
      if (run.ok()) {
        last = absl::DeadlineExceededError(absl::StrCat("run ", run_id, " still ", v1::RunState_Name(run->state()),
                                                        " (attempt ", run->attempt(), ")"));
      } else {
        last = run.status();
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return last;
  }
  v1::RunService::Stub* stub() { return stub_.get(); }

 private:
  std::unique_ptr<v1::RunService::Stub> stub_;
  std::string token_;
};

inline bool IsTerminal(v1::RunState s) {
  return s == v1::SUCCEEDED || s == v1::FAILED || s == v1::CANCELLED;
}

// Read-only look into the server's SQLite file (WAL readers do not block it).
class Db {
 public:
  explicit Db(const fs::path& path) {
    sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~Db() { sqlite3_close(db_); }
  // Rows of a query as strings (columns joined by '|').
  std::vector<std::string> Query(const std::string& sql) {
    std::vector<std::string> rows;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      rows.push_back(std::string("SQL error: ") + sqlite3_errmsg(db_));
      return rows;
    }
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        const unsigned char* text = sqlite3_column_text(stmt, c);
        absl::StrAppend(&row, c ? "|" : "", text ? reinterpret_cast<const char*>(text) : "NULL");
      }
      rows.push_back(row);
    }
    sqlite3_finalize(stmt);
    return rows;
  }
  int64_t Count(const std::string& sql) {
    auto rows = Query(sql);
    return rows.empty() ? -1 : std::atoll(rows[0].c_str());
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace pendulum::cluster
