// WorkerService end to end in-process, with a scripted worker on a real
// stub: placement, ingestion acks, state changes, cancel, checkpoint
// requests, leases and requeue with resume, artifacts, restart reconciliation,
// and WatchRun streaming state and points live.
#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "server/api/worker_service_impl.h"
#include "tests/unit/server/api/fake_worker.h"

namespace pendulum::testing {
namespace {

class WorkerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.StartServer(); }

  v1::QueryMetricsResponse Metrics(int64_t run) {
    v1::QueryMetricsRequest q;
    q.set_run_id(run);
    v1::QueryMetricsResponse r;
    grpc::Status s = env_.runs_->QueryMetrics(ApiTestEnv::Context(env_.alice_token_).get(), q, &r);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return r;
  }

  grpc::Status Upload(int64_t run, uint32_t attempt, int64_t step, const std::string& bytes,
                      v1::ArtifactInfo* info, const std::string& sha_override = "",
                      const std::string& kind = "checkpoint", const std::string& name = "",
                      int64_t size_override = -1) {
    auto context = ApiTestEnv::Context(env_.worker_token_);
    auto writer = env_.workers_->UploadArtifact(context.get(), info);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
    v1::ArtifactChunk first;
    auto* h = first.mutable_header();
    h->set_run_id(run);
    h->set_attempt(attempt);
    h->set_kind(kind);
    h->set_name(name);
    h->set_step(step);
    h->set_size(size_override >= 0 ? size_override : static_cast<int64_t>(bytes.size()));
    h->set_sha256(sha_override.empty()
                      ? absl::BytesToHexString(std::string(reinterpret_cast<char*>(digest), sizeof(digest)))
                      : sha_override);
    constexpr size_t kChunk = 1 << 20;
    for (size_t off = 0; off == 0 || off < bytes.size(); off += kChunk) {
      v1::ArtifactChunk chunk = off == 0 ? first : v1::ArtifactChunk();
      chunk.set_data(bytes.substr(off, kChunk));
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  ApiTestEnv env_;
};

TEST_F(WorkerServiceTest, RegisterTellsTheLeaseAndHeartbeat) {
  FakeWorker w(&env_, "w1", 1);
  v1::RegisterResponse r = w.Register();
  EXPECT_EQ(r.worker_id(), "w1");
  EXPECT_EQ(r.lease_seconds(), 15u);
  EXPECT_EQ(r.heartbeat_seconds(), 3u);
}

TEST_F(WorkerServiceTest, RunIsPlacedIngestedAckedAndSucceeds) {
  FakeWorker w(&env_, "w1", 1);
  w.Register();
  w.Connect();
  int64_t run = env_.Submit(env_.alice_token_);
  auto assign = w.NextAssignment();
  ASSERT_TRUE(assign.has_value());
  EXPECT_EQ(assign->run_id(), run);
  EXPECT_EQ(assign->attempt(), 1u);
  EXPECT_EQ(assign->spec().name(), "quick");
  EXPECT_TRUE(assign->resume_artifact().empty());
  EXPECT_EQ(env_.Get(env_.alice_token_, run).state(), v1::STARTING);
  EXPECT_EQ(env_.Get(env_.alice_token_, run).worker_id(), "w1");

  w.SendEvents(run, 1, {Started(1), Loss(2, 1, 0.9), Loss(3, 2, 0.7)});
  ASSERT_TRUE(w.WaitForAck(run, 1, 3));
  EXPECT_EQ(env_.Get(env_.alice_token_, run).state(), v1::RUNNING);
  v1::QueryMetricsResponse metrics = Metrics(run);
  ASSERT_EQ(metrics.series_size(), 1);
  ASSERT_EQ(metrics.series(0).points_size(), 2);
  EXPECT_DOUBLE_EQ(metrics.series(0).points(1).value(), 0.7);

  // A second run waits: the only slot is busy.
  int64_t second = env_.Submit(env_.alice_token_);
  EXPECT_TRUE(Eventually([&] {
    return env_.Get(env_.alice_token_, second).queue_reason() == "needs a CPU slot, all 1 slot is busy";
  })) << env_.Get(env_.alice_token_, second).queue_reason();

  w.SendStatus(run, 1, v1::SUCCEEDED, 0, "done");
  ASSERT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, run).state() == v1::SUCCEEDED; }));
  // The freed slot goes to the waiting run.
  auto next = w.NextAssignment();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->run_id(), second);
}

TEST_F(WorkerServiceTest, AckIsTheHighestContiguousSeqAndResendsAreIgnored) {
  FakeWorker w(&env_, "w1", 1);
  w.Register();
  w.Connect();
  int64_t run = env_.Submit(env_.alice_token_);
  ASSERT_TRUE(w.NextAssignment().has_value());
  w.SendEvents(run, 1, {Started(1), Loss(3, 2, 0.5)});
  auto ack = w.Next([](const v1::ServerMessage& m) { return m.has_ack(); });
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->ack().acked_seq(), 1u);  // seq 2 missing: 3 is stored but not acked
  w.SendEvents(run, 1, {Loss(2, 1, 0.6), Loss(3, 2, 0.5)});  // fills the gap, resends 3
  ASSERT_TRUE(w.WaitForAck(run, 1, 3));
  EXPECT_EQ(Metrics(run).series(0).points_size(), 2);  // not 3: the resend was deduplicated
}

TEST_F(WorkerServiceTest, FailedRunKeepsExitCodeAndReason) {
  FakeWorker w(&env_, "w1", 1);
  w.Register();
  w.Connect();
  int64_t run = env_.Submit(env_.alice_token_);
  ASSERT_TRUE(w.NextAssignment().has_value());
  w.SendStatus(run, 1, v1::FAILED, 3, "data error: no such file /nope\n<stderr tail>");
  ASSERT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, run).state() == v1::FAILED; }));
  v1::Run r = env_.Get(env_.alice_token_, run);
  EXPECT_EQ(r.exit_code(), 3);
  EXPECT_NE(r.exit_reason().find("no such file"), std::string::npos) << r.exit_reason();
}

// A worker that cannot start its trainer (binary missing or not executable)
// reports the attempt QUEUED: the run goes back to the queue (not FAILED) and
// the worker gets no placement for 30 s, then 60 s after a second failure in a
// row; a trainer it starts resets that.
TEST_F(WorkerServiceTest, WorkerThatCannotStartTheTrainerRequeuesTheRunAndIsHeldBack) {
  auto assignment = [](FakeWorker& w) {
    auto m = w.Next([](const v1::ServerMessage& m) { return m.has_assign(); }, absl::Milliseconds(300));
    return m ? std::optional<v1::Assignment>(m->assign()) : std::nullopt;
  };
  // Moves the fake clock in heartbeat-sized steps (the worker stays within its
  // lease) and runs the server's housekeeping after each.
  auto advance = [&](FakeWorker& w, absl::Duration d) {
    for (absl::Duration done; done < d; done += absl::Seconds(1)) {
      env_.clock_.Advance(std::min(absl::Seconds(1), d - done));
      v1::WorkerMessage beat;
      beat.mutable_heartbeat();
      w.Send(beat);
      // The lease is 15 s of fake time: a heartbeat handled a few steps late
      // still keeps the worker alive.
      absl::SleepFor(absl::Milliseconds(5));
      env_.server_->coordinator()->CheckLeases();
    }
  };
  auto held_back_for = [&](FakeWorker& w, absl::Duration d) {
    advance(w, d - absl::Seconds(1));
    EXPECT_FALSE(assignment(w).has_value()) << "placed while held back";
    advance(w, absl::Seconds(2));
    return assignment(w);
  };
  FakeWorker w(&env_, "w1", 1);
  w.Register();
  w.Connect();
  int64_t run = env_.Submit(env_.alice_token_);
  ASSERT_TRUE(w.NextAssignment().has_value());
  w.SendStatus(run, 1, v1::QUEUED, -1, "program not executable: /opt/pendulum/pendulum-train");
  ASSERT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, run).attempt() == 2u; }));
  // It waits, not FAILED, saying which worker is held back and why.
  const std::string why =
      "worker 'w1' is held back: could not start a trainer (program not executable: "
      "/opt/pendulum/pendulum-train); no placements for 30s";
  EXPECT_TRUE(Eventually([&] {
    return env_.Get(env_.alice_token_, run).queue_reason().find(why) != std::string::npos;
  })) << env_.Get(env_.alice_token_, run).queue_reason();
  EXPECT_EQ(env_.Get(env_.alice_token_, run).state(), v1::QUEUED);
  // `pendulum workers` shows it too.
  auto note = [&] {
    v1::ListWorkersResponse r;
    grpc::Status s = env_.runs_->ListWorkers(ApiTestEnv::Context(env_.alice_token_).get(), {}, &r);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return r.workers_size() == 1 ? r.workers(0).note() : std::string("?");
  };
  EXPECT_EQ(note(), "held back 30s more: could not start a trainer (program not executable: "
                    "/opt/pendulum/pendulum-train); no placements for 30s");

  auto again = held_back_for(w, absl::Seconds(30));
  EXPECT_EQ(note(), "");
  ASSERT_TRUE(again.has_value()) << "not offered work again after the hold";
  EXPECT_EQ(again->run_id(), run);
  EXPECT_EQ(again->attempt(), 2u);
  // A second failure in a row: held back twice as long.
  w.SendStatus(run, 2, v1::QUEUED, -1, "program not found: /opt/pendulum/pendulum-train");
  ASSERT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, run).attempt() == 3u; }));
  advance(w, absl::Seconds(30));
  EXPECT_FALSE(assignment(w).has_value()) << "the second hold is 60 s";
  again = held_back_for(w, absl::Seconds(30));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->attempt(), 3u);
  // The trainer starts this time: the run is RUNNING and the next failure is
  // held back 30 s again.
  w.SendStatus(run, 3, v1::RUNNING);
  ASSERT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, run).state() == v1::RUNNING; }));
  w.SendStatus(run, 3, v1::QUEUED, -1, "pipe: too many open files");
  ASSERT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, run).attempt() == 4u; }));
  again = held_back_for(w, absl::Seconds(30));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->attempt(), 4u);
  EXPECT_NE(env_.Get(env_.alice_token_, run).state(), v1::FAILED);
}

TEST_F(WorkerServiceTest, CancellingARunningRunWaitsForTheWorker) {
  FakeWorker w(&env_, "w1", 1);
  w.Register();
  w.Connect();
  int64_t run = env_.Submit(env_.alice_token_);
  ASSERT_TRUE(w.NextAssignment().has_value());
  w.SendStatus(run, 1, v1::RUNNING);
  ASSERT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, run).state() == v1::RUNNING; }));

  v1::CancelRunRequest cancel;
  cancel.set_run_id(run);
  v1::Run r;
  ASSERT_TRUE(env_.runs_->CancelRun(ApiTestEnv::Context(env_.alice_token_).get(), cancel, &r).ok());
  EXPECT_EQ(r.state(), v1::CANCELLING);
  auto message = w.Next([](const v1::ServerMessage& m) { return m.has_cancel(); });
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->cancel().run_id(), run);
  EXPECT_EQ(message->cancel().attempt(), 1u);
  EXPECT_EQ(message->cancel().grace_seconds(), 10u);
  // The trainer exits 143 after SIGTERM: a requested stop is CANCELLED, not FAILED.
  w.SendStatus(run, 1, v1::FAILED, 143, "terminated");
  ASSERT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, run).state() == v1::CANCELLED; }));
}

TEST_F(WorkerServiceTest, RequestCheckpointReachesTheWorker) {
  FakeWorker w(&env_, "w1", 1);
  w.Register();
  w.Connect();
  int64_t run = env_.Submit(env_.alice_token_);
  ASSERT_TRUE(w.NextAssignment().has_value());
  v1::RequestCheckpointRequest request;
  request.set_run_id(run);
  v1::RequestCheckpointResponse response;
  // Not running yet: refused with the state.
  grpc::Status s = env_.runs_->RequestCheckpoint(ApiTestEnv::Context(env_.alice_token_).get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  w.SendStatus(run, 1, v1::RUNNING);
  ASSERT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, run).state() == v1::RUNNING; }));
  s = env_.runs_->RequestCheckpoint(ApiTestEnv::Context(env_.alice_token_).get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto m = w.Next([](const v1::ServerMessage& m) { return m.has_checkpoint_now(); });
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->checkpoint_now().run_id(), run);
}

TEST_F(WorkerServiceTest, LostWorkerRunIsRequeuedAndResumesFromItsCheckpointElsewhere) {
  FakeWorker w1(&env_, "w1", 1);
  w1.Register();
  w1.Connect();
  int64_t run = env_.Submit(env_.alice_token_);
  ASSERT_TRUE(w1.NextAssignment().has_value());
  w1.SendEvents(run, 1, {Started(1), Loss(2, 5, 0.8), Loss(3, 10, 0.6), Loss(4, 15, 0.5)});
  ASSERT_TRUE(w1.WaitForAck(run, 1, 4));
  std::string checkpoint(2'500'000, '\0');
  for (size_t i = 0; i < checkpoint.size(); ++i) checkpoint[i] = static_cast<char>(i * 31 % 251);
  v1::ArtifactInfo info;
  grpc::Status s = Upload(run, 1, 10, checkpoint, &info);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(info.step(), 10);

  // w1 goes silent past the lease; w2 is alive.
  env_.clock_.Advance(absl::Seconds(16));
  FakeWorker w2(&env_, "w2", 1);
  w2.Register();
  w2.Connect();
  env_.server_->coordinator()->CheckLeases();

  auto assign = w2.NextAssignment();
  ASSERT_TRUE(assign.has_value());
  EXPECT_EQ(assign->run_id(), run);
  EXPECT_EQ(assign->attempt(), 2u);
  EXPECT_EQ(assign->resume_artifact(), info.id());
  EXPECT_EQ(assign->resume_step(), 10);
  v1::Run r = env_.Get(env_.alice_token_, run);
  EXPECT_EQ(r.attempt(), 2u);
  EXPECT_EQ(r.worker_id(), "w2");
  EXPECT_TRUE(w1.closed() || Eventually([&] { return w1.closed(); }));  // the silent stream is ended

  // The attempt-1 point past the checkpoint (step 15) is superseded and hidden.
  ASSERT_TRUE(Eventually([&] {
    auto m = Metrics(run);
    return m.series_size() == 1 && m.series(0).points_size() == 2;
  }));

  // w2 downloads exactly the bytes w1 uploaded.
  auto context = ApiTestEnv::Context(env_.worker_token_);
  v1::DownloadArtifactRequest download;
  download.set_id(assign->resume_artifact());
  auto reader = env_.workers_->DownloadArtifact(context.get(), download);
  v1::ArtifactChunk chunk;
  std::string received;
  int chunks = 0;
  while (reader->Read(&chunk)) {
    if (chunks++ == 0) {
      EXPECT_EQ(chunk.header().step(), 10);
      EXPECT_EQ(chunk.header().sha256(), info.sha256());
    }
    EXPECT_LE(chunk.data().size(), 1u << 20);
    received += chunk.data();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(chunks, 3);
  EXPECT_TRUE(received == checkpoint);
}

TEST_F(WorkerServiceTest, UploadWithWrongSha256IsRejected) {
  int64_t run = env_.Submit(env_.alice_token_);
  v1::ArtifactInfo info;
  grpc::Status s = Upload(run, 1, 3, "checkpoint-bytes", &info, std::string(64, 'a'));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_NE(s.error_message().find("sha256"), std::string::npos) << s.error_message();
  s = Upload(999, 1, 3, "x", &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
}

// An analysis run's files: uploaded by the worker as named artifacts, listed by
// GetRun (not a resume point), fetched back by name through RunService by the
// owner only; names and sizes are checked with errors that say what is wrong.
TEST_F(WorkerServiceTest, NamedArtifactsAreListedAndFetchedByTheOwner) {
  int64_t run = env_.Submit(env_.alice_token_);
  std::string bytes(3 * (1 << 20) / 2 + 17, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + 3);
  v1::ArtifactInfo info;
  grpc::Status s = Upload(run, 1, 5, bytes, &info, "", "analysis", "interaction_basis/layer0.pt");
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(Upload(run, 1, 5, "{}", &info, "", "analysis", "interaction_basis/summary.json").ok());

  v1::Run got = env_.Get(env_.alice_token_, run);
  ASSERT_EQ(got.artifacts_size(), 2);
  EXPECT_EQ(got.artifacts(0).name(), "interaction_basis/layer0.pt");
  EXPECT_EQ(got.artifacts(0).kind(), "analysis");
  EXPECT_EQ(got.artifacts(0).size(), static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(got.artifacts(0).step(), 5);
  EXPECT_EQ(got.artifacts(1).name(), "interaction_basis/summary.json");

  auto fetch = [&](const std::string& token, const std::string& name, std::string* out,
                   v1::RunArtifact* record) {
    v1::FetchArtifactRequest r;
    r.set_run_id(run);
    r.set_name(name);
    auto context = ApiTestEnv::Context(token);
    auto reader = env_.runs_->FetchArtifact(context.get(), r);
    v1::ArtifactData d;
    while (reader->Read(&d)) {
      if (d.has_info()) *record = d.info();
      EXPECT_LE(d.data().size(), 1u << 20);
      *out += d.data();
    }
    return reader->Finish();
  };
  std::string received;
  v1::RunArtifact record;
  s = fetch(env_.alice_token_, "interaction_basis/layer0.pt", &received, &record);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(received == bytes);
  EXPECT_EQ(record.sha256(), got.artifacts(0).sha256());
  EXPECT_EQ(record.size(), static_cast<int64_t>(bytes.size()));
  received.clear();
  s = fetch(env_.alice_token_, "nope.pt", &received, &record);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("interaction_basis/summary.json"), std::string::npos) << s.error_message();
  s = fetch(env_.bob_token_, "interaction_basis/layer0.pt", &received, &record);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "someone else's run is invisible";
  EXPECT_TRUE(received.empty());

  // Bad names and the size cap are INVALID_ARGUMENT naming the field.
  s = Upload(run, 1, 5, "x", &info, "", "analysis", "../etc/passwd");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("header.name"), std::string::npos) << s.error_message();
  s = Upload(run, 1, 5, "x", &info, "", "analysis", "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  s = Upload(run, 1, 5, "x", &info, "", "checkpoint", "named.pt");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  s = Upload(run, 1, 5, "x", &info, "", "analysis", "huge.pt", api::kMaxNamedArtifactBytes + 1);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("cap"), std::string::npos) << s.error_message();
  EXPECT_EQ(env_.Get(env_.alice_token_, run).artifacts_size(), 2);
}

TEST_F(WorkerServiceTest, ServerRestartKillsNothingTheWorkerStillRuns) {
  int64_t kept = 0, dropped = 0;
  {
    FakeWorker w(&env_, "w1", 2);
    w.Register();
    w.Connect();
    kept = env_.Submit(env_.alice_token_);
    dropped = env_.Submit(env_.alice_token_);
    ASSERT_TRUE(w.NextAssignment().has_value());
    ASSERT_TRUE(w.NextAssignment().has_value());
    w.SendStatus(kept, 1, v1::RUNNING);
    w.SendStatus(dropped, 1, v1::RUNNING);
    ASSERT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, dropped).state() == v1::RUNNING; }));
    env_.StopServer();
  }
  env_.StartServer();
  EXPECT_EQ(env_.Get(env_.alice_token_, kept).state(), v1::RUNNING);
  FakeWorker w(&env_, "w1", 2);
  w.Register();
  w.Connect({{kept, 1}});  // the worker lost `dropped` meanwhile
  ASSERT_TRUE(Eventually([&] { return env_.Get(env_.alice_token_, dropped).attempt() == 2; }));
  EXPECT_EQ(env_.Get(env_.alice_token_, kept).state(), v1::RUNNING);
  EXPECT_EQ(env_.Get(env_.alice_token_, kept).attempt(), 1u);
  // `dropped` is requeued and placed again on the free slot, as attempt 2.
  auto assign = w.NextAssignment();
  ASSERT_TRUE(assign.has_value());
  EXPECT_EQ(assign->run_id(), dropped);
  EXPECT_EQ(assign->attempt(), 2u);
  EXPECT_FALSE(w.Next([](const v1::ServerMessage& m) { return m.has_cancel(); }, absl::Milliseconds(200)));
}

TEST_F(WorkerServiceTest, StaleAttemptOnHelloIsCancelled) {
  FakeWorker w(&env_, "w1", 1);
  w.Register();
  int64_t run = env_.Submit(env_.alice_token_);
  w.Connect({{run, 7}});  // an attempt the server never had running here
  auto cancel = w.Next([](const v1::ServerMessage& m) { return m.has_cancel(); });
  ASSERT_TRUE(cancel.has_value());
  EXPECT_EQ(cancel->cancel().attempt(), 7u);
}

TEST_F(WorkerServiceTest, UnregisteredWorkerCannotConnect) {
  FakeWorker w(&env_, "ghost", 1);
  w.Connect();
  EXPECT_TRUE(Eventually([&] { return w.closed(); }));
}

TEST_F(WorkerServiceTest, GpuRunWaitsWithAReasonForABigEnoughBlock) {
  FakeWorker w(&env_, "gpu1", 0, 1);
  w.Register();
  w.Connect();
  int64_t run = env_.Submit(env_.alice_token_, {"resources.gpus=2"});
  EXPECT_TRUE(Eventually([&] {
    return env_.Get(env_.alice_token_, run).queue_reason() == "needs 2 GPUs, no online worker has more than 1";
  })) << env_.Get(env_.alice_token_, run).queue_reason();
  int64_t one = env_.Submit(env_.alice_token_, {"resources.gpus=1"});
  auto assign = w.NextAssignment();
  ASSERT_TRUE(assign.has_value());
  EXPECT_EQ(assign->run_id(), one);
  EXPECT_EQ(assign->gpu_indices_size(), 1);
}

TEST_F(WorkerServiceTest, WatchRunStreamsStateChangesAndPointsUntilTheEnd) {
  FakeWorker w(&env_, "w1", 1);
  w.Register();
  w.Connect();
  int64_t run = env_.Submit(env_.alice_token_);
  ASSERT_TRUE(w.NextAssignment().has_value());

  auto context = ApiTestEnv::Context(env_.alice_token_);
  v1::WatchRunRequest request;
  request.set_run_id(run);
  auto reader = env_.runs_->WatchRun(context.get(), request);
  v1::RunUpdate first;
  ASSERT_TRUE(reader->Read(&first));
  EXPECT_EQ(first.run().state(), v1::STARTING);

  w.SendEvents(run, 1, {Started(1), Loss(2, 1, 0.9), Loss(3, 2, 0.8)});
  ASSERT_TRUE(w.WaitForAck(run, 1, 3));
  w.SendStatus(run, 1, v1::SUCCEEDED);

  std::vector<v1::RunState> states;
  std::vector<double> losses;
  v1::RunUpdate update;
  while (reader->Read(&update)) {
    if (update.has_run()) states.push_back(update.run().state());
    for (const auto& s : update.points()) {
      for (const auto& p : s.points()) losses.push_back(p.value());
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(losses, (std::vector<double>{0.9, 0.8}));
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.front(), v1::RUNNING);
  EXPECT_EQ(states.back(), v1::SUCCEEDED);
}

}  // namespace
}  // namespace pendulum::testing
