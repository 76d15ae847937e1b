// MetricReader: series by name and step range, downsampling, oscillation
// series and snapshots at/before a step, per-attempt counts.
#include "server/store/metric_reader.h"

#include "gtest/gtest.h"
#include "server/store/metric_ingestor.h"
#include "tests/unit/server/store/store_test_env.h"

namespace pendulum::store {
namespace {

using pendulum::v1::RunEvents;
using pendulum::v1::TrainerEvent;
using testing::Batch;
using testing::ScalarEvent;
using testing::StoreTest;

class MetricReaderTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    run_ = MakeRun();
    auto ing = MetricIngestor::Start(db_.get(), &clock_);
    ASSERT_TRUE(ing.ok()) << ing.status();
    ingestor_ = std::move(ing).value();
    reader_ = std::make_unique<MetricReader>(db_.get());
  }
  void TearDown() override {
    ingestor_.reset();
    StoreTest::TearDown();
  }
  void Ingest(RunEvents b) {
    auto ack = ingestor_->Submit(std::move(b)).get();
    ASSERT_TRUE(ack.ok()) << ack.status();
  }
  pendulum::v1::Run run_;
  std::unique_ptr<MetricIngestor> ingestor_;
  std::unique_ptr<MetricReader> reader_;
};

TEST_F(MetricReaderTest, SeriesByNameAndStepRange) {
  RunEvents b = Batch(run_.id(), 1, {});
  for (int s = 1; s <= 100; ++s) {
    *b.add_events() = ScalarEvent(s, s * 10, {{"loss", 100.0 - s}, {"acc", s / 100.0}});
  }
  Ingest(b);
  ASSERT_OK_AND_ASSIGN(auto names, reader_->MetricNames(run_.id()));
  EXPECT_EQ(names, (std::vector<std::string>{"acc", "loss"}));

  pendulum::v1::QueryMetricsRequest q;
  q.set_run_id(run_.id());
  ASSERT_OK_AND_ASSIGN(auto all, reader_->QueryMetrics(q));
  ASSERT_EQ(all.series_size(), 2);
  EXPECT_EQ(all.series(0).name(), "acc");
  EXPECT_EQ(all.series(1).points_size(), 100);
  EXPECT_EQ(all.series(1).points(0).value(), 99.0);
  EXPECT_EQ(all.series(1).points(0).attempt(), 1u);

  q.add_names("loss");
  q.add_names("never_logged");
  q.set_step_min(200);
  q.set_step_max(300);
  ASSERT_OK_AND_ASSIGN(auto some, reader_->QueryMetrics(q));
  ASSERT_EQ(some.series_size(), 2);
  EXPECT_EQ(some.series(0).name(), "loss");
  ASSERT_EQ(some.series(0).points_size(), 11);
  EXPECT_EQ(some.series(0).points(0).step(), 200);
  EXPECT_EQ(some.series(0).points(10).step(), 300);
  EXPECT_EQ(some.series(1).name(), "never_logged");
  EXPECT_EQ(some.series(1).points_size(), 0);
}

TEST_F(MetricReaderTest, DownsamplingKeepsTheLastPointOfEachStepBucket) {
  RunEvents b = Batch(run_.id(), 1, {});
  for (int s = 1; s <= 1000; ++s) *b.add_events() = ScalarEvent(s, s, {{"loss", static_cast<double>(s)}});
  Ingest(b);
  pendulum::v1::QueryMetricsRequest q;
  q.set_run_id(run_.id());
  q.set_max_points(100);
  ASSERT_OK_AND_ASSIGN(auto resp, reader_->QueryMetrics(q));
  const auto& pts = resp.series(0).points();
  ASSERT_EQ(pts.size(), 100);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(pts[i].step(), (i + 1) * 10);
    EXPECT_EQ(pts[i].value(), (i + 1) * 10.0);
  }
  EXPECT_EQ(pts[99].step(), 1000);  // the newest point is always kept
  // Uneven: 1000 points into 7 buckets → at most 7 points, last one kept.
  q.set_max_points(7);
  ASSERT_OK_AND_ASSIGN(resp, reader_->QueryMetrics(q));
  EXPECT_LE(resp.series(0).points_size(), 7);
  EXPECT_GE(resp.series(0).points_size(), 6);
  EXPECT_EQ(resp.series(0).points(resp.series(0).points_size() - 1).step(), 1000);
  // Short series are returned whole.
  q.set_max_points(5000);
  ASSERT_OK_AND_ASSIGN(resp, reader_->QueryMetrics(q));
  EXPECT_EQ(resp.series(0).points_size(), 1000);
}

TEST_F(MetricReaderTest, BadRequestsNameTheField) {
  pendulum::v1::QueryMetricsRequest q;
  q.set_run_id(run_.id());
  q.set_max_points(100001);
  auto r = reader_->QueryMetrics(q);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("max_points"), std::string::npos);
  q.set_max_points(0);
  q.set_step_min(10);
  q.set_step_max(5);
  r = reader_->QueryMetrics(q);
  EXPECT_NE(r.status().message().find("step_max"), std::string::npos);
  q.set_run_id(31337);
  q.set_step_max(0);
  EXPECT_EQ(reader_->QueryMetrics(q).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MetricReaderTest, OscillationSeriesAndSnapshotAtOrBeforeAStep) {
  RunEvents b = Batch(run_.id(), 1, {});
  uint64_t seq = 1;
  for (int step : {100, 200, 300}) {
    TrainerEvent osc;
    osc.set_seq(seq++);
    osc.mutable_oscillation()->set_step(step);
    for (const char* layer : {"blocks.0.fc", "blocks.1.fc"}) {
      auto* p = osc.mutable_oscillation()->add_layers();
      p->set_layer(layer);
      (*p->mutable_values())["flip_rate"] = step / 1000.0;
      (*p->mutable_values())["osc_ratio_0.005"] = step / 10000.0;
    }
    *b.add_events() = osc;
    for (const char* layer : {"blocks.0.fc", "blocks.1.fc"}) {
      TrainerEvent snap;
      snap.set_seq(seq++);
      auto* s = snap.mutable_snapshot();
      s->set_step(step);
      s->set_layer(layer);
      s->set_hist_max(1.0);
      s->add_hist_counts(step);
      auto* top = s->add_top();
      top->set_index(step / 100);
      top->set_frequency(0.5);
      *b.add_events() = snap;
    }
  }
  Ingest(b);

  pendulum::v1::QueryOscillationRequest q;
  q.set_run_id(run_.id());
  ASSERT_OK_AND_ASSIGN(auto all, reader_->QueryOscillation(q));
  ASSERT_EQ(all.series_size(), 6);  // 2 layers × 3 steps, ordered by layer then step
  EXPECT_EQ(all.series(0).layer(), "blocks.0.fc");
  EXPECT_EQ(all.series(0).step(), 100);
  EXPECT_EQ(all.series(0).values_size(), 2);
  EXPECT_EQ(all.series(5).layer(), "blocks.1.fc");
  EXPECT_EQ(all.series(5).step(), 300);
  EXPECT_DOUBLE_EQ(all.series(5).values().at("flip_rate"), 0.3);
  EXPECT_EQ(all.snapshots_size(), 0);

  q.set_layer("blocks.1.fc");
  q.add_stats("flip_rate");
  q.set_include_snapshot(true);
  q.set_snapshot_step(250);
  ASSERT_OK_AND_ASSIGN(auto one, reader_->QueryOscillation(q));
  ASSERT_EQ(one.series_size(), 3);
  for (const auto& p : one.series()) {
    EXPECT_EQ(p.layer(), "blocks.1.fc");
    EXPECT_EQ(p.values_size(), 1);
    EXPECT_EQ(p.values().count("flip_rate"), 1u);
  }
  ASSERT_EQ(one.snapshots_size(), 1);
  EXPECT_EQ(one.snapshots(0).step(), 200);
  EXPECT_EQ(one.snapshots(0).top(0).index(), 2);

  q.clear_layer();
  q.set_snapshot_step(0);  // newest
  ASSERT_OK_AND_ASSIGN(auto newest, reader_->QueryOscillation(q));
  ASSERT_EQ(newest.snapshots_size(), 2);
  EXPECT_EQ(newest.snapshots(0).step(), 300);
  EXPECT_EQ(newest.snapshots(1).layer(), "blocks.1.fc");
  q.set_snapshot_step(50);  // before any snapshot
  ASSERT_OK_AND_ASSIGN(auto early, reader_->QueryOscillation(q));
  EXPECT_EQ(early.snapshots_size(), 0);
}

TEST_F(MetricReaderTest, CountsPerAttempt) {
  Ingest(Batch(run_.id(), 1, {ScalarEvent(1, 1, {{"loss", 1}, {"acc", 0}}), ScalarEvent(2, 2, {{"loss", 1}})}));
  Ingest(Batch(run_.id(), 2, {ScalarEvent(1, 3, {{"loss", 1}})}));
  ASSERT_OK_AND_ASSIGN(auto per, reader_->CountPointsPerAttempt(run_.id()));
  ASSERT_EQ(per.size(), 2u);
  EXPECT_EQ(per[0].attempt, 1u);
  EXPECT_EQ(per[0].acked_seq, 2u);
  EXPECT_EQ(per[0].points_stored, 3);
  EXPECT_EQ(per[1].points_stored, 1);
  ASSERT_OK_AND_ASSIGN(auto none, reader_->CountPoints(run_.id(), 9));
  EXPECT_EQ(none.points_stored, 0);
  EXPECT_EQ(none.acked_seq, 0u);
}

}  // namespace
}  // namespace pendulum::store
