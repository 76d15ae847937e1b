#pragma once
// PrometheusServer: a real Prometheus (Debian's /usr/bin/prometheus, or
// $PROMETHEUS_BINARY) on 127.0.0.1 with a generated config (free port, temp
// TSDB dir, 1 s scrape interval), and a client for its HTTP query API
// (/api/v1/query through curl). Header-only; the process is SIGKILLed and
// reaped on destruction (cluster::Process).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/integration/worker/cluster.h"

namespace pendulum::testing {

namespace fs = std::filesystem;

inline std::string PrometheusBinary() {
  const char* env = std::getenv("PROMETHEUS_BINARY");
  return env && *env ? env : "/usr/bin/prometheus";
}

// A port nothing listens on right now (bound to port 0, then released).
inline int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class PrometheusServer {
 public:
  // `jobs`: job name → "127.0.0.1:PORT" target.
  static absl::StatusOr<std::unique_ptr<PrometheusServer>> Start(const fs::path& dir,
                                                                 const std::map<std::string, std::string>& jobs) {
    auto p = std::unique_ptr<PrometheusServer>(new PrometheusServer());
    p->dir_ = dir;
    p->port_ = FreeLoopbackPort();
    fs::create_directories(dir / "tsdb");
    std::ofstream config(dir / "prometheus.yml");
    config << "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
           << "scrape_configs:\n";
    for (const auto& [job, target] : jobs) {
      config << "  - job_name: " << job << "\n    static_configs:\n      - targets: [\"" << target << "\"]\n";
    }
    config.close();
    auto process = cluster::Process::Start(
        {PrometheusBinary(), "--config.file=" + (dir / "prometheus.yml").string(),
         "--storage.tsdb.path=" + (dir / "tsdb").string(),
         absl::StrCat("--web.listen-address=127.0.0.1:", p->port_), "--log.level=warn"},
        dir / "prometheus.log");
    if (!process.ok()) return process.status();
    p->process_ = std::move(*process);
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      auto ready = p->Get("/-/ready");
      if (ready.ok() && ready->find("Ready") != std::string::npos) return p;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("prometheus not ready within 60 s; log:\n", p->process_->Log()));
  }

  int port() const { return port_; }
  std::string Log() const { return process_->Log(); }

  // GET `path` (with `query` URL-encoded as the `query` parameter when set).
  absl::StatusOr<std::string> Get(const std::string& path, const std::string& query = "") const {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10"};
    if (!query.empty()) argv.insert(argv.end(), {"-G", "--data-urlencode", "query=" + query});
    argv.push_back(absl::StrCat("http://127.0.0.1:", port_, path));
    argv[0] = CurlBinary();
    return cluster::RunAndCapture(argv, dir_);
  }

  // Runs an instant query; the parsed JSON response (status "success" or an error).
  absl::StatusOr<nlohmann::json> Query(const std::string& promql) const {
    auto body = Get("/api/v1/query", promql);
    if (!body.ok()) return body.status();
    nlohmann::json j = nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return absl::InternalError(absl::StrCat("not JSON from prometheus: ", *body));
    return j;
  }

  // The single value of a vector query; nullopt when the result is empty.
  absl::StatusOr<std::optional<double>> Value(const std::string& promql) const {
    auto j = Query(promql);
    if (!j.ok()) return j.status();
    if ((*j)["status"] != "success") return absl::InvalidArgumentError(absl::StrCat(promql, ": ", j->dump()));
    const auto& result = (*j)["data"]["result"];
    if (result.empty()) return std::optional<double>();
    if (result.size() > 1) return absl::InvalidArgumentError(absl::StrCat(promql, ": several series: ", j->dump()));
    return std::optional<double>(std::stod(result[0]["value"][1].get<std::string>()));
  }

  // Polls until `promql` has one series with value `expected` (within 1e-9).
  absl::Status WaitForValue(const std::string& promql, double expected,
                            absl::Duration timeout = absl::Seconds(30)) const {
    const absl::Time deadline = absl::Now() + timeout;
    std::string last = "no answer";
    while (absl::Now() < deadline) {
      auto v = Value(promql);
      if (v.ok() && v->has_value() && std::abs(**v - expected) < 1e-9) return absl::OkStatus();
      last = !v.ok() ? v.status().ToString() : v->has_value() ? std::to_string(**v) : "no series";
      absl::SleepFor(absl::Milliseconds(250));
    }
    return absl::DeadlineExceededError(absl::StrCat(promql, " never became ", expected, "; last: ", last));
  }

  // Polls until `promql` returns no series (e.g. a run's gauge after it ended).
  absl::Status WaitForAbsent(const std::string& promql, absl::Duration timeout = absl::Seconds(30)) const {
    const absl::Time deadline = absl::Now() + timeout;
    std::string last;
    while (absl::Now() < deadline) {
      auto v = Value(promql);
      if (v.ok() && !v->has_value()) return absl::OkStatus();
      last = !v.ok() ? v.status().ToString() : std::to_string(**v);
      absl::SleepFor(absl::Milliseconds(250));
    }
    return absl::DeadlineExceededError(absl::StrCat(promql, " still present; last: ", last));
  }

  static std::string CurlBinary() {
    for (const char* c : {"/usr/bin/curl", "/bin/curl", "/usr/local/bin/curl"}) {
      if (fs::exists(c)) return c;
    }
    return "curl";
  }

 private:
  PrometheusServer() = default;
  fs::path dir_;
  int port_ = 0;
  std::unique_ptr<cluster::Process> process_;
};

}  // namespace pendulum::testing
