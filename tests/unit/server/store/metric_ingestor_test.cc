// MetricIngestor: exactly-once storage, contiguous acks that survive restarts,
// superseding, run progress, concurrent readers, and a SIGKILL mid-ingest.
#include "server/store/metric_ingestor.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/store/metric_reader.h"
#include "tests/unit/server/store/store_test_env.h"

namespace pendulum::store {
namespace {

using pendulum::v1::RunEvents;
using pendulum::v1::TrainerEvent;
using testing::Batch;
using testing::ScalarEvent;
using testing::StoreTest;

class MetricIngestorTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    run_ = MakeRun();
    RunStore runs(db_.get(), &clock_);
    auto placed = runs.AssignRun(run_.id(), "w1", "test");
    ASSERT_TRUE(placed.ok()) << placed.status();
    run_ = *placed;
    StartIngestor();
  }
  void TearDown() override {
    ingestor_.reset();
    StoreTest::TearDown();
  }
  void StartIngestor() {
    auto ing = MetricIngestor::Start(db_.get(), &clock_);
    ASSERT_TRUE(ing.ok()) << ing.status();
    ingestor_ = std::move(ing).value();
  }
  IngestAck Ingest(RunEvents batch) {
    absl::StatusOr<IngestAck> ack = ingestor_->Submit(std::move(batch)).get();
    EXPECT_TRUE(ack.ok()) << ack.status();
    return ack.ok() ? *ack : IngestAck{};
  }
  int64_t Count(const std::string& sql) {
    auto lease = db_->Acquire();
    EXPECT_TRUE(lease.ok());
    auto s = (*lease)->Prepare(sql);
    EXPECT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(*(*s)->Step());
    int64_t n = (*s)->ColumnInt(0);
    (*s)->Reset();
    return n;
  }
  // Seqs [from, to] with two scalars each, step = seq.
  RunEvents Range(uint64_t from, uint64_t to, uint32_t attempt = 1) {
    RunEvents b = Batch(run_.id(), attempt, {});
    for (uint64_t s = from; s <= to; ++s) {
      *b.add_events() = ScalarEvent(s, static_cast<int64_t>(s), {{"loss", 1.0 / s}, {"acc", 0.5}});
    }
    return b;
  }

  pendulum::v1::Run run_;
  std::unique_ptr<MetricIngestor> ingestor_;
};

TEST_F(MetricIngestorTest, SameBatchTwiceStoresEachPointOnce) {
  IngestAck first = Ingest(Range(1, 10));
  EXPECT_EQ(first.acked_seq, 10u);
  EXPECT_EQ(first.points_inserted, 20);
  EXPECT_EQ(first.duplicate_events, 0);
  IngestAck second = Ingest(Range(1, 10));
  EXPECT_EQ(second.acked_seq, 10u);
  EXPECT_EQ(second.points_inserted, 0);
  EXPECT_EQ(second.duplicate_events, 10);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM metrics"), 20);
  // Overlapping resend: only the new tail is stored.
  IngestAck third = Ingest(Range(5, 15));
  EXPECT_EQ(third.acked_seq, 15u);
  EXPECT_EQ(third.points_inserted, 10);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM metrics"), 30);
  MetricReader reader(db_.get());
  ASSERT_OK_AND_ASSIGN(AttemptCounts c, reader.CountPoints(run_.id(), 1));
  EXPECT_EQ(c.acked_seq, 15u);
  EXPECT_EQ(c.points_stored, 30);
}

TEST_F(MetricIngestorTest, OutOfOrderSeqsAckOnlyTheContiguousPrefix) {
  RunEvents b = Batch(run_.id(), 1, {ScalarEvent(1, 1, {{"loss", 1}}), ScalarEvent(2, 2, {{"loss", 1}}),
                                     ScalarEvent(5, 5, {{"loss", 1}}), ScalarEvent(6, 6, {{"loss", 1}})});
  EXPECT_EQ(Ingest(b).acked_seq, 2u);
  EXPECT_EQ(Ingest(Batch(run_.id(), 1, {ScalarEvent(4, 4, {{"loss", 1}})})).acked_seq, 2u);
  EXPECT_EQ(Ingest(Batch(run_.id(), 1, {ScalarEvent(3, 3, {{"loss", 1}})})).acked_seq, 6u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM metrics"), 6);
  // Events without stored rows (a log line) still count for contiguity.
  TrainerEvent log;
  log.set_seq(8);
  log.mutable_log()->set_text("hello");
  EXPECT_EQ(Ingest(Batch(run_.id(), 1, {log})).acked_seq, 6u);
  TrainerEvent seven;
  seven.set_seq(7);
  seven.mutable_log()->set_text("world");
  EXPECT_EQ(Ingest(Batch(run_.id(), 1, {seven})).acked_seq, 8u);
}

TEST_F(MetricIngestorTest, AckAndGapSurviveARestart) {
  EXPECT_EQ(Ingest(Range(1, 5)).acked_seq, 5u);
  EXPECT_EQ(Ingest(Range(7, 9)).acked_seq, 5u);  // 6 is missing
  ingestor_.reset();
  db_.reset();
  DatabaseOptions options;
  options.path = path_;
  ASSERT_OK_AND_ASSIGN(db_, Database::Open(options));
  MetricReader reader(db_.get());
  ASSERT_OK_AND_ASSIGN(AttemptCounts c, reader.CountPoints(run_.id(), 1));
  EXPECT_EQ(c.acked_seq, 5u);
  EXPECT_EQ(c.points_stored, 16);
  StartIngestor();
  // The worker resends everything after its last ack: 6..9.
  IngestAck ack = Ingest(Range(6, 9));
  EXPECT_EQ(ack.acked_seq, 9u);
  EXPECT_EQ(ack.points_inserted, 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM metrics"), 18);
}

TEST_F(MetricIngestorTest, EveryEventKindLandsInItsTableAndUpdatesTheRun) {
  TrainerEvent started;
  started.set_seq(1);
  started.mutable_started()->set_total_steps(1000);
  TrainerEvent s1 = ScalarEvent(2, 10, {{"loss", 2.5}, {"lr", 0.1}});
  s1.mutable_scalars()->set_epoch(0.5);
  TrainerEvent s2 = ScalarEvent(3, 20, {{"loss", 1.5}});
  s2.set_time_unix_ms(s1.time_unix_ms() + 1000);
  TrainerEvent osc;
  osc.set_seq(4);
  osc.mutable_oscillation()->set_step(20);
  for (const char* layer : {"fc1", "fc2"}) {
    auto* p = osc.mutable_oscillation()->add_layers();
    p->set_layer(layer);
    (*p->mutable_values())["flip_rate"] = 0.01;
    (*p->mutable_values())["osc_ratio_0.005"] = 0.2;
  }
  TrainerEvent snap;
  snap.set_seq(5);
  snap.mutable_snapshot()->set_step(20);
  snap.mutable_snapshot()->set_layer("fc1");
  snap.mutable_snapshot()->add_shape(4);
  snap.mutable_snapshot()->add_hist_counts(3);
  TrainerEvent ckpt;
  ckpt.set_seq(6);
  ckpt.mutable_checkpoint()->set_step(20);
  ckpt.mutable_checkpoint()->set_path("out/ckpt-20.pt");
  TrainerEvent fin;
  fin.set_seq(7);
  fin.mutable_finished()->set_ok(true);
  fin.mutable_finished()->set_final_step(20);
  fin.mutable_finished()->set_points_emitted(3);
  // Progress is updated once per batch; steps/s compares with the previous batch.
  IngestAck first = Ingest(Batch(run_.id(), 1, {started, s1}));
  EXPECT_EQ(first.acked_seq, 2u);
  EXPECT_EQ(first.points_inserted, 2);
  EXPECT_FALSE(first.finished);
  IngestAck ack = Ingest(Batch(run_.id(), 1, {s2, osc, snap, ckpt, fin}));
  EXPECT_EQ(ack.acked_seq, 7u);
  EXPECT_EQ(ack.points_inserted, 1);
  EXPECT_EQ(ack.max_step, 20);
  EXPECT_TRUE(ack.finished);
  EXPECT_EQ(ack.finished_event.points_emitted(), 3);
  ASSERT_EQ(ack.checkpoints.size(), 1u);
  EXPECT_EQ(ack.checkpoints[0].path(), "out/ckpt-20.pt");

  EXPECT_EQ(Count("SELECT COUNT(*) FROM layer_oscillation"), 4);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM weight_snapshots"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM run_checkpoints"), 1);
  EXPECT_EQ(Count("SELECT last_checkpoint_step FROM runs"), 20);
  RunStore runs(db_.get(), &clock_);
  ASSERT_OK_AND_ASSIGN(auto run, runs.GetRun(run_.id()));
  EXPECT_EQ(run.progress().step(), 20);
  EXPECT_EQ(run.progress().total_steps(), 1000);
  EXPECT_EQ(run.progress().last_loss(), 1.5);
  EXPECT_DOUBLE_EQ(run.progress().steps_per_second(), 10.0);  // 10 steps in 1 s
  EXPECT_EQ(run.points_emitted(), 3);
  EXPECT_EQ(run.points_stored(), 3);
}

TEST_F(MetricIngestorTest, BadBatchesFailAloneAndNameTheProblem) {
  auto bad_attempt = ingestor_->Submit(Batch(run_.id(), 0, {ScalarEvent(1, 1, {{"loss", 1}})}));
  auto bad_seq = ingestor_->Submit(Batch(run_.id(), 1, {ScalarEvent(0, 1, {{"loss", 1}})}));
  auto unknown = ingestor_->Submit(Batch(777, 1, {ScalarEvent(1, 1, {{"loss", 1}})}));
  auto good = ingestor_->Submit(Range(1, 3));
  EXPECT_EQ(bad_attempt.get().status().code(), absl::StatusCode::kInvalidArgument);
  auto seq_status = bad_seq.get().status();
  EXPECT_EQ(seq_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(seq_status.message().find("seq"), std::string::npos);
  EXPECT_EQ(unknown.get().status().code(), absl::StatusCode::kNotFound);
  auto ok = good.get();
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->acked_seq, 3u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM metrics"), 6);
}

TEST_F(MetricIngestorTest, ResumeSupersedesLaterPointsOfEarlierAttempts) {
  Ingest(Range(1, 100, 1));  // attempt 1 reached step 100, last checkpoint at 50
  RunStore runs(db_.get(), &clock_);
  ASSERT_OK(runs.RequeueRun(run_.id(), 1, "worker lost").status());
  ASSERT_OK(runs.AssignRun(run_.id(), "w2", "placed").status());
  ASSERT_OK(ingestor_->MarkSuperseded(run_.id(), 2, 50));
  ASSERT_OK(ingestor_->MarkSuperseded(run_.id(), 2, 50));  // idempotent
  // Attempt 2 continues from step 51 with its own seq numbering.
  RunEvents b = Batch(run_.id(), 2, {});
  for (int s = 1; s <= 30; ++s) *b.add_events() = ScalarEvent(s, 50 + s, {{"loss", 0.1}});
  EXPECT_EQ(Ingest(b).acked_seq, 30u);
  // A late event from the lost attempt 1 (step 101) arrives already superseded.
  Ingest(Batch(run_.id(), 1, {ScalarEvent(101, 101, {{"loss", 9.0}})}));

  MetricReader reader(db_.get());
  pendulum::v1::QueryMetricsRequest q;
  q.set_run_id(run_.id());
  q.add_names("loss");
  ASSERT_OK_AND_ASSIGN(auto resp, reader.QueryMetrics(q));
  ASSERT_EQ(resp.series_size(), 1);
  const auto& pts = resp.series(0).points();
  ASSERT_EQ(pts.size(), 80);  // steps 1..50 of attempt 1, 51..80 of attempt 2
  for (int i = 0; i < pts.size(); ++i) {
    EXPECT_EQ(pts[i].step(), i + 1);
    EXPECT_EQ(pts[i].attempt(), i < 50 ? 1u : 2u);
  }
  q.set_include_superseded(true);
  ASSERT_OK_AND_ASSIGN(resp, reader.QueryMetrics(q));
  EXPECT_EQ(resp.series(0).points_size(), 131);
  // Kept, not deleted.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM metrics WHERE superseded = 1"), 2 * 50 + 1);
}

TEST_F(MetricIngestorTest, DestructorDrainsEveryQueuedBatch) {
  std::atomic<int> acked{0};
  std::atomic<uint64_t> highest{0};
  for (int i = 0; i < 50; ++i) {
    ingestor_->Submit(Range(i * 20 + 1, i * 20 + 20), [&](absl::StatusOr<IngestAck> ack) {
      ASSERT_TRUE(ack.ok()) << ack.status();
      ++acked;
      highest = std::max<uint64_t>(highest, ack->acked_seq);
    });
  }
  ingestor_.reset();
  EXPECT_EQ(acked.load(), 50);
  EXPECT_EQ(highest.load(), 1000u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM metrics"), 2000);
}

TEST_F(MetricIngestorTest, ReadersRunConcurrentlyAndSeeConsistentSnapshots) {
  constexpr int kBatches = 200;
  constexpr int kPerBatch = 50;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> read_errors{0};
  auto reader_loop = [&] {
    MetricReader reader(db_.get());
    int64_t last_loss_points = 0;
    while (!done.load()) {
      pendulum::v1::QueryMetricsRequest q;
      q.set_run_id(run_.id());
      auto resp = reader.QueryMetrics(q);
      if (!resp.ok()) {
        ++read_errors;
        continue;
      }
      // Both names come from one transaction: equal lengths, never shrinking.
      if (resp->series_size() == 2) {
        EXPECT_EQ(resp->series(0).points_size(), resp->series(1).points_size());
        EXPECT_GE(resp->series(0).points_size(), last_loss_points);
        last_loss_points = resp->series(0).points_size();
      }
      ++reads;
    }
  };
  std::thread r1(reader_loop), r2(reader_loop);
  std::vector<std::future<absl::StatusOr<IngestAck>>> acks;
  for (int i = 0; i < kBatches; ++i) {
    acks.push_back(ingestor_->Submit(Range(i * kPerBatch + 1, (i + 1) * kPerBatch)));
  }
  uint64_t highest = 0;
  for (auto& f : acks) {
    auto ack = f.get();
    ASSERT_TRUE(ack.ok()) << ack.status();
    highest = std::max(highest, ack->acked_seq);
  }
  done = true;
  r1.join();
  r2.join();
  EXPECT_EQ(highest, static_cast<uint64_t>(kBatches * kPerBatch));
  EXPECT_EQ(read_errors.load(), 0);
  EXPECT_GT(reads.load(), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM metrics"), 2 * kBatches * kPerBatch);
}

// A child process ingests and reports each ack on a pipe; the parent SIGKILLs
// it mid-stream, reopens the file, and finds every acknowledged point.
TEST_F(MetricIngestorTest, SigkillMidIngestLosesNoAcknowledgedPoint) {
  ingestor_.reset();
  const int64_t run_id = run_.id();
  db_.reset();  // no SQLite handle may cross fork()
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    DatabaseOptions options;
    options.path = path_;
    auto db = Database::Open(options);
    if (!db.ok()) _exit(2);
    auto ing = MetricIngestor::Start(db->get(), RealClock::Get());
    if (!ing.ok()) _exit(3);
    for (uint64_t seq = 1;; seq += 100) {
      RunEvents b;
      b.set_run_id(run_id);
      b.set_attempt(1);
      for (uint64_t s = seq; s < seq + 100; ++s) {
        *b.add_events() = ScalarEvent(s, static_cast<int64_t>(s), {{"loss", 1.0}, {"acc", 0.5}, {"lr", 0.1}});
      }
      (*ing)->Submit(std::move(b), [fd = fds[1]](absl::StatusOr<IngestAck> ack) {
        if (!ack.ok()) _exit(4);
        uint64_t acked = ack->acked_seq;
        if (write(fd, &acked, sizeof(acked)) != sizeof(acked)) _exit(5);
      });
    }
  }
  close(fds[1]);
  uint64_t acked = 0;
  uint64_t value = 0;
  int acks = 0;
  while (acks < 40 && read(fds[0], &value, sizeof(value)) == sizeof(value)) {
    acked = std::max(acked, value);
    ++acks;
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);
  ASSERT_GE(acked, 100u);

  DatabaseOptions options;
  options.path = path_;
  ASSERT_OK_AND_ASSIGN(db_, Database::Open(options));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM metrics WHERE seq <= " + std::to_string(acked)),
            static_cast<int64_t>(3 * acked));
  EXPECT_EQ(Count("SELECT COUNT(DISTINCT seq) FROM metrics WHERE seq <= " + std::to_string(acked)),
            static_cast<int64_t>(acked));
  MetricReader reader(db_.get());
  ASSERT_OK_AND_ASSIGN(AttemptCounts c, reader.CountPoints(run_id, 1));
  EXPECT_GE(c.acked_seq, acked);
  EXPECT_EQ(c.points_stored, Count("SELECT COUNT(*) FROM metrics"));
  // Resuming from the durable ack continues cleanly.
  StartIngestor();
  IngestAck next = Ingest(Range(c.acked_seq + 1, c.acked_seq + 10));
  EXPECT_EQ(next.acked_seq, c.acked_seq + 10);
}

}  // namespace
}  // namespace pendulum::store
