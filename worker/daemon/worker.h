#pragma once
// Worker: the pendulum-worker daemon core. Registers with the server, keeps
// one Connect stream (Hello, heartbeats, event batches, run statuses out;
// assignments, cancels, acks, checkpoint-now in), reconnects with capped,
// jittered exponential backoff, and runs each assignment as an AttemptRunner.
// After any reconnect it resends every spooled event not yet acked; on start
// it recovers attempts left on disk by an earlier daemon.
//
// Threads: Run() is the connection loop and the stream's only writer; a
// reader thread per stream handles server messages; each attempt has its own
// threads. Shutdown() may be called from any thread (e.g. a signal watcher).
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/channel.h"
#include "pendulum/v1/worker_service.grpc.pb.h"
#include "worker/daemon/artifact_transfer.h"
#include "worker/daemon/attempt_runner.h"
#include "worker/daemon/backoff.h"
#include "worker/daemon/gpu_probe.h"

namespace pendulum::daemon {

struct WorkerOptions {
  std::string worker_id;                        // default: hostname
  std::string token;                            // worker-role bearer token
  std::map<std::string, std::string> labels;    // --labels k=v,...
  int fake_gpus = 0;                            // --gpus N when NVML is absent
  int slots = 1;                                // CPU slots when there is no GPU
  std::string work_dir = "./pendulum-work";
  std::string trainer_path;                     // pendulum-train
  BackoffOptions backoff;                       // reconnect delays
  size_t max_batch_events = 4096;               // per RunEvents message
  size_t max_batch_bytes = 1u << 20;            // per RunEvents message (approx.)
  absl::Duration rpc_timeout = absl::Seconds(5);  // Register deadline
};

// A snapshot for heartbeats and the Prometheus exposer.
struct WorkerStats {
  int running = 0;             // attempts with a live trainer
  int finishing = 0;           // finished, events or status not yet delivered
  uint64_t spool_events = 0;   // unacked events on disk
  uint64_t spool_bytes = 0;
  bool connected = false;
  std::vector<v1::GpuInfo> gpus;
};

class Worker : public std::enable_shared_from_this<Worker> {
 public:
  Worker(WorkerOptions options, std::shared_ptr<grpc::ChannelInterface> channel);
  ~Worker();

  // Recovers attempts left in work_dir by an earlier daemon.
  absl::Status Recover();
  // Connects, serves and reconnects until Shutdown(). Returns when stopped.
  void Run();
  // Stops Run(); running trainers are killed without reporting a final
  // status (the server requeues them when this worker is gone).
  void Shutdown();

  WorkerStats Stats() const;
  const std::string& worker_id() const { return options_.worker_id; }

 private:
  struct Attempt;
  class Observer;
  using Key = std::pair<int64_t, uint32_t>;

  // One Connect stream: Register, Hello, then serve until it breaks.
  // Returns true if the stream got as far as sending Hello.
  bool Session();
  void HandleServerMessage(const v1::ServerMessage& message);
  void StartAttempt(const v1::Assignment& assignment);
  // Messages the writer should send now (events, statuses); also retires
  // attempts whose final status was sent. Called on the Run() thread.
  std::vector<v1::WorkerMessage> CollectOutgoing(bool* more);
  v1::WorkerMessage MakeHeartbeat() const;
  void Wake();
  std::vector<v1::GpuInfo> Gpus() const;

  WorkerOptions options_;
  std::unique_ptr<v1::WorkerService::StubInterface> stub_;
  ArtifactTransfer artifacts_;
  GpuProbe gpu_probe_;

  mutable absl::Mutex mu_;
  std::map<Key, std::shared_ptr<Attempt>> attempts_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::WorkerMessage> outbox_ ABSL_GUARDED_BY(mu_);  // statuses to send
  uint64_t wake_gen_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stream_broken_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* live_context_ ABSL_GUARDED_BY(mu_) = nullptr;  // for Shutdown
};

}  // namespace pendulum::daemon
