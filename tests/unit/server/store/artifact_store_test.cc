// ArtifactStore: checkpoint metadata and the run's resume point.
#include "server/store/artifact_store.h"

#include "gtest/gtest.h"
#include "tests/unit/server/store/store_test_env.h"

namespace pendulum::store {
namespace {

using testing::StoreTest;

class ArtifactStoreTest : public StoreTest {};

Artifact Checkpoint(int64_t run, uint32_t attempt, int64_t step) {
  Artifact a;
  a.run_id = run;
  a.attempt = attempt;
  a.step = step;
  a.kind = "checkpoint";
  a.path = "run-" + std::to_string(run) + "/step-" + std::to_string(step) + ".ckpt";
  a.size = 1000 + step;
  a.sha256 = std::string(64, 'a');
  return a;
}

TEST_F(ArtifactStoreTest, NewestCheckpointBecomesTheResumePoint) {
  auto run = MakeRun();
  ArtifactStore artifacts(db_.get(), &clock_);
  RunStore runs(db_.get(), &clock_);
  ASSERT_OK_AND_ASSIGN(ResumePoint none, runs.GetResumePoint(run.id()));
  EXPECT_EQ(none.artifact_id, "");

  ASSERT_OK_AND_ASSIGN(Artifact a100, artifacts.Add(Checkpoint(run.id(), 1, 100)));
  ASSERT_OK_AND_ASSIGN(Artifact a200, artifacts.Add(Checkpoint(run.id(), 1, 200)));
  // A late upload of an older checkpoint does not move the resume point back.
  ASSERT_OK_AND_ASSIGN(Artifact a150, artifacts.Add(Checkpoint(run.id(), 1, 150)));
  ASSERT_OK_AND_ASSIGN(ResumePoint rp, runs.GetResumePoint(run.id()));
  EXPECT_EQ(rp.artifact_id, a200.id);
  EXPECT_EQ(rp.step, 200);

  ASSERT_OK_AND_ASSIGN(Artifact got, artifacts.Get(a150.id));
  EXPECT_EQ(got.path, a150.path);
  EXPECT_EQ(got.size, 1150);
  EXPECT_EQ(got.created_unix_ms, clock_.NowUnixMillis());
  ASSERT_OK_AND_ASSIGN(auto list, artifacts.ListForRun(run.id()));
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].id, a100.id);
  ASSERT_OK_AND_ASSIGN(auto latest, artifacts.LatestCheckpoint(run.id()));
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->step, 200);

  EXPECT_EQ(artifacts.Get("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(artifacts.Get("123456").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(artifacts.Add(Checkpoint(987654, 1, 1)).status().code(), absl::StatusCode::kNotFound);
  Artifact bad = Checkpoint(run.id(), 1, 1);
  bad.kind = "";
  EXPECT_EQ(artifacts.Add(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ArtifactStoreTest, NamedArtifactsAreFoundByNameAndNeverBecomeTheResumePoint) {
  auto run = MakeRun();
  ArtifactStore artifacts(db_.get(), &clock_);
  RunStore runs(db_.get(), &clock_);
  Artifact basis = Checkpoint(run.id(), 1, 7);
  basis.kind = "analysis";
  basis.name = "interaction_basis/layer0.pt";
  ASSERT_OK_AND_ASSIGN(Artifact first, artifacts.Add(basis));
  basis.size = 4242;  // the same name uploaded again (retry, next attempt): the newest wins
  ASSERT_OK_AND_ASSIGN(Artifact second, artifacts.Add(basis));
  ASSERT_OK_AND_ASSIGN(Artifact ckpt, artifacts.Add(Checkpoint(run.id(), 1, 5)));
  EXPECT_EQ(ckpt.name, "");
  ASSERT_OK_AND_ASSIGN(Artifact got, artifacts.GetByName(run.id(), "interaction_basis/layer0.pt"));
  EXPECT_EQ(got.id, second.id);
  EXPECT_EQ(got.kind, "analysis");
  EXPECT_EQ(got.size, 4242);
  ASSERT_OK_AND_ASSIGN(Artifact by_id, artifacts.Get(first.id));
  EXPECT_EQ(by_id.name, "interaction_basis/layer0.pt");
  ASSERT_OK_AND_ASSIGN(auto list, artifacts.ListForRun(run.id()));
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[2].name, "");
  ASSERT_OK_AND_ASSIGN(ResumePoint rp, runs.GetResumePoint(run.id()));
  EXPECT_EQ(rp.artifact_id, ckpt.id) << "only checkpoints are resume points";
  absl::Status missing = artifacts.GetByName(run.id(), "nope.pt").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("'interaction_basis/layer0.pt'"), std::string::npos) << missing;
  EXPECT_EQ(artifacts.GetByName(run.id(), "").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pendulum::store
