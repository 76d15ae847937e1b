// A class-incremental run of the real pendulum-train process is SIGKILLed
// right after the checkpoint that starts its third stage, then resumed with
// --resume from that checkpoint: the new attempt starts inside stage 2 (no
// stage 0/1 results re-emitted), with the exemplar memory of the checkpoint,
// and ends with the same memory (class ids and dataset indices, in herding
// order) and the same average incremental accuracy as an uninterrupted run.
// About 10-20 s on 2 loaded cores (three short trainer runs).

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>

#include "gtest/gtest.h"
#include "pendulum/v1/run_spec.pb.h"
#include "proto/io/event_stream.h"
#include "tests/support/test_paths.h"
#include "tests/support/trainer_process.h"
#include "worker/train/data/dataset_factory.h"
#include "worker/train/incremental/class_order.h"
#include "worker/train/incremental/exemplar_memory.h"

namespace pendulum::train::incremental {
namespace {
namespace fs = std::filesystem;

using pendulum::testing::ChildProcess;
using pendulum::testing::ReadCompleteEvents;
using pendulum::testing::ReadWholeFile;
using pendulum::testing::TrainerBinary;
using pendulum::testing::WriteSpecFile;

constexpr int64_t kClasses = 6;
constexpr int64_t kBudget = 30;

// 3 stages of 2 classes on 16x16 Gaussian blobs; long enough per stage (about
// 70 steps) that the kill lands well inside stage 2.
v1::RunSpec IncrementalSpec() {
  v1::RunSpec s;
  s.set_name("incremental-resume");
  s.set_seed(7);
  s.mutable_model()->set_arch("cnn_small");
  s.mutable_model()->set_fc_bias(false);
  auto* syn = s.mutable_data()->mutable_synthetic();
  s.mutable_data()->set_dataset("synthetic");
  syn->set_num_train(3000);
  syn->set_num_eval(300);
  syn->set_num_classes(kClasses);
  syn->add_shape(1);
  syn->add_shape(16);
  syn->add_shape(16);
  syn->set_noise(2.0);
  auto* inc = s.mutable_method()->mutable_incremental();
  inc->set_base_classes(2);
  inc->set_classes_per_stage(2);
  inc->set_memory_size(kBudget);
  inc->mutable_weight_aligning()->set_enabled(true);
  inc->set_weight_clip(true);
  inc->set_epochs_per_stage(2);
  s.mutable_optimizer()->set_type("sgd");
  s.mutable_optimizer()->set_lr(0.05);
  s.mutable_optimizer()->set_momentum(0.9);
  s.mutable_schedule()->set_batch_size(32);
  s.mutable_logging()->set_metrics_every_steps(10);
  s.mutable_resources()->set_cpus(1);
  return s;
}

std::vector<std::string> Args(const fs::path& spec, const fs::path& out, std::vector<std::string> extra = {}) {
  return pendulum::testing::TrainerArgs(spec, out, 1, std::move(extra));
}

ExemplarMemory MemoryOf(const fs::path& ckpt) {
  torch::serialize::InputArchive archive, method, memory;
  archive.load_from(ckpt.string());
  archive.read("method", method);
  method.read("memory", memory);
  ExemplarMemory m;
  EXPECT_TRUE(m.Load(memory).ok()) << ckpt;
  return m;
}

// The data position a checkpoint records (core/checkpoint.cc: "position" =
// step, stage, epoch, epoch_in_stage, batch_in_epoch, stage_start_step).
struct Position {
  int64_t step = -1, stage = -1, epoch = -1, epoch_in_stage = -1, batch_in_epoch = -1;
};

Position PositionOf(const fs::path& ckpt) {
  torch::serialize::InputArchive archive;
  archive.load_from(ckpt.string());
  at::Tensor p;
  archive.read("position", p);
  EXPECT_EQ(p.numel(), 6) << ckpt;
  if (p.numel() != 6) return {};
  const int64_t* v = p.data_ptr<int64_t>();
  return Position{v[0], v[1], v[2], v[3], v[4]};
}

// The stage-start checkpoint of `stage` among a run's CheckpointSaved events.
std::optional<fs::path> StageStartCheckpoint(const fs::path& out, const std::vector<v1::TrainerEvent>& events,
                                             int64_t stage) {
  for (const auto& e : events) {
    if (!e.has_checkpoint()) continue;
    fs::path p = out / e.checkpoint().path();
    const Position pos = PositionOf(p);
    if (pos.stage == stage && pos.epoch_in_stage == 0 && pos.batch_in_epoch == 0) return p;
  }
  return std::nullopt;
}

std::map<std::string, double> LastScalars(const std::vector<v1::TrainerEvent>& events) {
  std::map<std::string, double> v;
  for (const auto& e : events) {
    if (!e.has_scalars()) continue;
    for (const auto& kv : e.scalars().values()) v[kv.first] = kv.second;
  }
  return v;
}

bool AnyScalar(const std::vector<v1::TrainerEvent>& events, const std::string& name) {
  for (const auto& e : events) {
    if (e.has_scalars() && e.scalars().values().count(name)) return true;
  }
  return false;
}

TEST(IncrementalResumeProcessTest, KilledInStageTwoResumesThereWithItsMemory) {
  if (!fs::exists(TrainerBinary())) GTEST_SKIP() << "pendulum-train not built at " << TrainerBinary();
  const fs::path dir = pendulum::testing::MakeTestTempDir();
  const fs::path spec = WriteSpecFile(dir, IncrementalSpec());

  // A: uninterrupted.
  {
    ChildProcess a(Args(spec, dir / "a"), dir / "a.stderr");
    ASSERT_EQ(a.Wait(120), 0) << ReadWholeFile(dir / "a.stderr");
  }
  auto a_events = ReadCompleteEvents(dir / "a" / "events.pb");
  auto a_stage2 = StageStartCheckpoint(dir / "a", a_events, 2);
  ASSERT_TRUE(a_stage2.has_value()) << "run A wrote no stage-2 start checkpoint";
  const std::map<std::string, double> a_last = LastScalars(a_events);
  // Progress/ETA: the method's step plan (stages over their classes plus the
  // replayed memory) is what the run really takes.
  ASSERT_TRUE(a_events.front().has_started() && a_events.back().has_finished());
  EXPECT_EQ(a_events.front().started().total_steps(), a_events.back().finished().final_step());
  ASSERT_TRUE(a_last.count("incremental/avg_inc_acc"));

  // B: SIGKILL as soon as its stage-2 start checkpoint is reported.
  std::optional<fs::path> b_stage2;
  {
    ChildProcess b(Args(spec, dir / "b"), dir / "b.stderr");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!b_stage2 && std::chrono::steady_clock::now() < deadline && b.Poll() < 0) {
      b_stage2 = StageStartCheckpoint(dir / "b", ReadCompleteEvents(dir / "b" / "events.pb"), 2);
      if (!b_stage2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(b_stage2.has_value()) << ReadWholeFile(dir / "b.stderr");
    kill(b.pid(), SIGKILL);
    ASSERT_EQ(b.Wait(30), 128 + SIGKILL) << "run B finished before it could be killed mid-scenario";
  }
  auto b_events = ReadCompleteEvents(dir / "b" / "events.pb");
  ASSERT_FALSE(b_events.empty());
  EXPECT_FALSE(b_events.back().has_finished());  // killed, not stopped
  EXPECT_FALSE(AnyScalar(b_events, "incremental/avg_inc_acc"));

  // The stage-2 checkpoint holds the memory built after stage 1: 4 classes, 7 each.
  const ExemplarMemory at_kill = MemoryOf(*b_stage2);
  EXPECT_EQ(at_kill.classes(), MemoryOf(*a_stage2).classes());
  ASSERT_EQ(at_kill.classes().size(), 4u);
  // Every exemplar of output class k is a training example of label order[k]
  // (the synthetic data is deterministic in the seed, so it is rebuilt here).
  const std::vector<int64_t> order = NumpyLegacyPermutation(kClasses, 1993);
  auto data = LoadData(IncrementalSpec().data(), IncrementalSpec().seed());
  ASSERT_TRUE(data.ok()) << data.status();
  for (const auto& [cls, idx] : at_kill.classes()) {
    EXPECT_EQ(idx.size(), size_t(kBudget / 4)) << "class " << cls;
    ASSERT_LT(cls, 4);
    for (int64_t i : idx) EXPECT_EQ(data->train.labels[i].item<int64_t>(), order[size_t(cls)]) << "class " << cls;
  }

  // C: the requeued attempt resumes from B's stage-2 checkpoint.
  {
    ChildProcess c(Args(spec, dir / "c", {"--resume", b_stage2->string()}), dir / "c.stderr");
    ASSERT_EQ(c.Wait(120), 0) << ReadWholeFile(dir / "c.stderr");
  }
  auto c_events = ReadCompleteEvents(dir / "c" / "events.pb");
  ASSERT_FALSE(c_events.empty());
  ASSERT_TRUE(c_events.front().has_started());
  EXPECT_EQ(c_events.front().started().first_step(), PositionOf(*b_stage2).step);
  // It trained stage 2 only: no stage 0/1 results again, stage 2's are there.
  EXPECT_FALSE(AnyScalar(c_events, "incremental/acc_stage_0"));
  EXPECT_FALSE(AnyScalar(c_events, "incremental/acc_stage_1"));
  EXPECT_TRUE(AnyScalar(c_events, "incremental/acc_stage_2"));
  for (const auto& e : c_events) {
    if (e.has_scalars() && e.scalars().values().count("incremental/stage")) {
      EXPECT_EQ(e.scalars().values().at("incremental/stage"), 2.0);
    }
  }
  // The last checkpoint of each run is written after the last stage's
  // EndStage, so it holds the final memory (the same in the resumed and the
  // uninterrupted run): all 6 classes at 30/6 = 5 each, every old class
  // keeping the first of the exemplars it had at the kill (herding order).
  std::optional<fs::path> c_last, a_last_ckpt;
  for (const auto& e : c_events) {
    if (e.has_checkpoint()) c_last = dir / "c" / e.checkpoint().path();
  }
  for (const auto& e : a_events) {
    if (e.has_checkpoint()) a_last_ckpt = dir / "a" / e.checkpoint().path();
  }
  ASSERT_TRUE(c_last && a_last_ckpt);
  const ExemplarMemory final_memory = MemoryOf(*c_last);
  EXPECT_EQ(final_memory.classes(), MemoryOf(*a_last_ckpt).classes());
  ASSERT_EQ(final_memory.classes().size(), size_t(kClasses));
  for (const auto& [cls, idx] : final_memory.classes()) {
    EXPECT_EQ(idx.size(), size_t(kBudget / kClasses)) << "class " << cls;
    auto old_class = at_kill.classes().find(cls);
    if (old_class == at_kill.classes().end()) continue;
    ASSERT_LE(idx.size(), old_class->second.size());
    EXPECT_TRUE(std::equal(idx.begin(), idx.end(), old_class->second.begin())) << "class " << cls;
  }
  const std::map<std::string, double> c_last_scalars = LastScalars(c_events);
  ASSERT_TRUE(c_last_scalars.count("incremental/avg_inc_acc"));
  EXPECT_DOUBLE_EQ(c_last_scalars.at("incremental/avg_inc_acc"), a_last.at("incremental/avg_inc_acc"));
  EXPECT_DOUBLE_EQ(c_last_scalars.at("incremental/final_acc"), a_last.at("incremental/final_acc"));
  EXPECT_EQ(c_last_scalars.at("incremental/stages_completed"), 3.0);
}

}  // namespace
}  // namespace pendulum::train::incremental
