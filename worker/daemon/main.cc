// pendulum-worker: the worker daemon (see worker.h). Parses flags, installs
// SIGTERM/SIGINT handling, starts the optional metrics exposer and runs the
// Worker until it is told to stop.
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "worker/daemon/worker.h"
#include "worker/daemon/worker_metrics.h"

namespace {

constexpr char kUsage[] = R"(usage: pendulum-worker [flags]
  --server HOST:PORT     server address (default 127.0.0.1:7070)
  --token TOKEN          worker-role token (default: $PENDULUM_TOKEN)
  --worker-id ID         stable worker id (default: hostname)
  --labels k=v,k=v       host labels the scheduler can match
  --gpus N               N fake GPU slots when NVML is absent
  --slots N              CPU slots when there is no GPU (default 1)
  --work-dir DIR         attempt dirs and event spools (default ./pendulum-work)
  --trainer PATH         pendulum-train (default: next to this binary)
  --metrics-listen ADDR  Prometheus exposer, e.g. 127.0.0.1:9101 (default off)
  --tls-ca FILE          dial the server with TLS, trusting this PEM CA / server
                         certificate (default: $PENDULUM_TLS_CA; unset = plaintext)
)";

std::filesystem::path SelfDir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return std::filesystem::current_path();
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path();
}

std::string DefaultTrainer() {
  const auto dir = SelfDir();
  // Installed side by side; in a build tree the trainer lives in ../train.
  for (const auto& candidate : {dir / "pendulum-train", dir.parent_path() / "train" / "pendulum-train"}) {
    if (std::filesystem::exists(candidate)) return candidate.string();
  }
  return (dir / "pendulum-train").string();
}

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "pendulum-worker: " << message << "\n" << kUsage;
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  pendulum::daemon::WorkerOptions options;
  std::string server = "127.0.0.1:7070";
  std::string metrics_listen;
  std::string tls_ca;
  if (const char* token = std::getenv("PENDULUM_TOKEN")) options.token = token;
  if (const char* ca = std::getenv("PENDULUM_TLS_CA")) tls_ca = ca;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg.rfind("--", 0) != 0) Die("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2), value;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      if (i + 1 >= argc) Die("--" + name + " needs a value");
      value = argv[++i];
    }
    auto number = [&](int min) {
      int n = 0;
      if (!absl::SimpleAtoi(value, &n) || n < min) {
        Die("--" + name + ": got '" + value + "', must be an integer >= " + std::to_string(min));
      }
      return n;
    };
    if (name == "server") server = value;
    else if (name == "token") options.token = value;
    else if (name == "worker-id") options.worker_id = value;
    else if (name == "gpus") options.fake_gpus = number(0);
    else if (name == "slots") options.slots = number(1);
    else if (name == "work-dir") options.work_dir = value;
    else if (name == "trainer") options.trainer_path = value;
    else if (name == "metrics-listen") metrics_listen = value;
    else if (name == "tls-ca") tls_ca = value;
    else if (name == "labels") {
      for (absl::string_view kv : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
        if (p.first.empty() || kv.find('=') == absl::string_view::npos) {
          Die("--labels: got '" + std::string(kv) + "', must be key=value");
        }
        options.labels[p.first] = p.second;
      }
    } else {
      Die("unknown flag --" + name);
    }
  }
  if (options.worker_id.empty()) {
    char host[256] = {0};
    ::gethostname(host, sizeof(host) - 1);
    options.worker_id = host;
  }
  if (options.trainer_path.empty()) options.trainer_path = DefaultTrainer();
  // Checked once here so a misconfigured worker says so at start-up; a
  // trainer that goes missing later (a reinstall) makes the attempt QUEUED,
  // and the server requeues the run and holds this worker back.
  if (::access(options.trainer_path.c_str(), X_OK) != 0) {
    Die("--trainer " + options.trainer_path + " is not an executable file (" + std::strerror(errno) + ")");
  }
  options.work_dir = std::filesystem::absolute(options.work_dir).string();
  if (options.token.empty()) {
    PENDULUM_LOG(WARNING) << "no token (--token or PENDULUM_TOKEN); the server will likely refuse us";
  }

  // Signals are taken by one thread with sigwait; every other thread (gRPC's,
  // the runners') inherits this mask. Children get a clean mask (ChildProcess).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!tls_ca.empty()) {
    std::ifstream in(tls_ca, std::ios::binary);
    std::stringstream pem;
    pem << in.rdbuf();
    if (!in || pem.str().find("-----BEGIN") == std::string::npos) {
      Die("--tls-ca: cannot read a PEM certificate from '" + tls_ca + "'");
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pem.str();
    credentials = grpc::SslCredentials(ssl);
  }
  // gRPC's own reconnect backoff (1 s growing to 120 s by default) sits under
  // ours: after a server restart the channel could stay in TRANSIENT_FAILURE
  // longer than a lease and the server would declare us lost. Cap it well
  // below any sane lease so our Backoff alone decides when we retry.
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is not a backoff but the shortest time a
  // connection attempt is given to finish: at 100 ms, a server just restarted
  // on a loaded machine could not complete the handshake in time ("tcp
  // handshaker shutdown" for 5-8 s, longer than the lease; seen in CI). A few
  // seconds is plenty on loopback and still well under a lease.
  grpc::ChannelArguments channel_args;
  channel_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  channel_args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 3000);
  channel_args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto worker = std::make_shared<pendulum::daemon::Worker>(
      options, grpc::CreateCustomChannel(server, credentials, channel_args));
  if (auto status = worker->Recover(); !status.ok()) {
    std::cerr << "pendulum-worker: " << status << "\n";
    return 1;
  }
  std::unique_ptr<pendulum::daemon::WorkerMetrics> metrics;
  if (!metrics_listen.empty()) {
    auto started = pendulum::daemon::WorkerMetrics::Start(metrics_listen, worker.get());
    if (!started.ok()) {
      std::cerr << "pendulum-worker: " << started.status() << "\n";
      return 1;
    }
    metrics = std::move(*started);
  }
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    PENDULUM_LOG(INFO) << "signal " << sig << ": shutting down";
    worker->Shutdown();
  });
  PENDULUM_LOG(INFO) << "pendulum-worker " << options.worker_id << " -> " << server << ", trainer "
                     << options.trainer_path << ", work dir " << options.work_dir;
  worker->Run();
  metrics.reset();
  worker.reset();
  // Unblock the signal thread if we stopped for another reason.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  return 0;
}
