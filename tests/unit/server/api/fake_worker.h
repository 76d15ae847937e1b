#pragma once
// FakeWorker: drives the real WorkerService through a real stub the way
// pendulum-worker does (Register, Connect + Hello, events, statuses), and
// collects what the server sends. No trainer: the test scripts the events.

#include <deque>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "tests/unit/server/api/api_test_env.h"

namespace pendulum::testing {

class FakeWorker {
 public:
  FakeWorker(ApiTestEnv* env, std::string id, uint32_t slots, uint32_t gpus = 0)
      : env_(env), id_(std::move(id)), slots_(slots), gpus_(gpus) {}
  ~FakeWorker() { Disconnect(); }

  v1::RegisterResponse Register() {
    v1::RegisterRequest request;
    request.set_worker_id(id_);
    request.set_hostname(id_ + ".local");
    request.set_slots(slots_);
    for (uint32_t i = 0; i < gpus_; ++i) {
      auto* gpu = request.add_gpus();
      gpu->set_index(i);
      gpu->set_name("FakeGPU");
      gpu->set_memory_mb(16000);
    }
    v1::RegisterResponse response;
    grpc::Status s = env_->workers_->Register(ApiTestEnv::Context(env_->worker_token_).get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  // Opens Connect and says Hello with the attempts this worker still has.
  void Connect(const std::vector<std::pair<int64_t, uint32_t>>& held = {}) {
    context_ = std::make_unique<grpc::ClientContext>();
    context_->AddMetadata("authorization", "Bearer " + env_->worker_token_);
    stream_ = env_->workers_->Connect(context_.get());
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id(id_);
    for (const auto& [run, attempt] : held) {
      auto* r = hello.mutable_hello()->add_runs();
      r->set_run_id(run);
      r->set_attempt(attempt);
    }
    ASSERT_TRUE(stream_->Write(hello));
    reader_ = std::thread([this] {
      v1::ServerMessage message;
      while (stream_->Read(&message)) {
        absl::MutexLock lock(&mu_);
        inbox_.push_back(message);
      }
      absl::MutexLock lock(&mu_);
      closed_ = true;
    });
  }

  void Send(const v1::WorkerMessage& message) {
    absl::MutexLock lock(&write_mu_);
    ASSERT_TRUE(stream_->Write(message));
  }

  void SendEvents(int64_t run, uint32_t attempt, std::vector<v1::TrainerEvent> events) {
    v1::WorkerMessage m;
    m.mutable_events()->set_run_id(run);
    m.mutable_events()->set_attempt(attempt);
    for (auto& e : events) *m.mutable_events()->add_events() = std::move(e);
    Send(m);
  }

  void SendStatus(int64_t run, uint32_t attempt, v1::RunState state, int exit_code = 0,
                  const std::string& message = "") {
    v1::WorkerMessage m;
    auto* s = m.mutable_status();
    s->set_run_id(run);
    s->set_attempt(attempt);
    s->set_state(state);
    s->set_exit_code(exit_code);
    s->set_message(message);
    Send(m);
  }

  // Waits for the first unconsumed message matching `pred` and removes it.
  std::optional<v1::ServerMessage> Next(const std::function<bool(const v1::ServerMessage&)>& pred,
                                        absl::Duration timeout = absl::Seconds(10)) {
    absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      {
        absl::MutexLock lock(&mu_);
        for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
          if (pred(*it)) {
            v1::ServerMessage m = *it;
            inbox_.erase(it);
            return m;
          }
        }
        if (closed_) break;
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
    return std::nullopt;
  }
  std::optional<v1::Assignment> NextAssignment() {
    auto m = Next([](const v1::ServerMessage& m) { return m.has_assign(); });
    if (!m) return std::nullopt;
    return m->assign();
  }
  // Highest acked seq for (run, attempt) once it reaches `seq`.
  bool WaitForAck(int64_t run, uint32_t attempt, uint64_t seq) {
    return Next([&](const v1::ServerMessage& m) {
             return m.has_ack() && m.ack().run_id() == run && m.ack().attempt() == attempt &&
                    m.ack().acked_seq() >= seq;
           }).has_value();
  }
  bool closed() {
    absl::MutexLock lock(&mu_);
    return closed_;
  }

  // Half-closes and waits for the server to end the stream.
  void Disconnect() {
    if (!stream_) return;
    {
      absl::MutexLock lock(&write_mu_);
      stream_->WritesDone();
    }
    context_->TryCancel();
    if (reader_.joinable()) reader_.join();
    stream_->Finish().IgnoreError();
    stream_.reset();
  }

  const std::string& id() const { return id_; }

 private:
  ApiTestEnv* env_;
  std::string id_;
  uint32_t slots_, gpus_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::ServerMessage>> stream_;
  std::thread reader_;
  absl::Mutex write_mu_;
  absl::Mutex mu_;
  std::deque<v1::ServerMessage> inbox_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

inline v1::TrainerEvent Started(uint64_t seq) {
  v1::TrainerEvent e;
  e.set_seq(seq);
  e.set_time_unix_ms(1000 + seq);
  e.mutable_started()->set_device("cpu");
  return e;
}

inline v1::TrainerEvent Loss(uint64_t seq, int64_t step, double loss) {
  v1::TrainerEvent e;
  e.set_seq(seq);
  e.set_time_unix_ms(1000 + seq);
  e.mutable_scalars()->set_step(step);
  (*e.mutable_scalars()->mutable_values())["loss"] = loss;
  return e;
}

}  // namespace pendulum::testing
