// In-process Trainer runs on tiny synthetic data: the event stream contract,
// exact resume, NaN detection and the method plug-in hooks.
#include "worker/train/core/trainer.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "gtest/gtest.h"
#include "proto/io/event_stream.h"
#include "tests/support/test_paths.h"
#include "tests/unit/train/read_events.h"
#include "tests/unit/train/run_trainer.h"
#include "worker/train/core/method_registry.h"

namespace pendulum::train {
namespace {

v1::RunSpec TinySpec() {
  v1::RunSpec s;
  s.set_name("tiny");
  s.set_seed(42);
  s.mutable_model()->set_arch("mlp");
  s.mutable_model()->add_hidden(32);
  s.mutable_model()->set_dropout(0.1);  // exercises the RNG state on resume
  auto* d = s.mutable_data();
  d->set_dataset("synthetic");
  d->mutable_synthetic()->set_num_train(256);
  d->mutable_synthetic()->set_num_eval(64);
  d->mutable_synthetic()->set_num_classes(4);
  d->mutable_synthetic()->add_shape(20);
  d->mutable_synthetic()->set_noise(2.0);
  d->set_loader_threads(2);
  s.mutable_optimizer()->set_type("adamw");
  s.mutable_optimizer()->set_lr(0.01);
  s.mutable_optimizer()->set_weight_decay(0.05);
  s.mutable_schedule()->set_epochs(3);
  s.mutable_schedule()->set_batch_size(16);  // 16 steps/epoch, 48 steps
  s.mutable_schedule()->set_lr_schedule("cosine");
  s.mutable_schedule()->set_warmup_epochs(0.5);
  s.mutable_logging()->set_metrics_every_steps(4);
  s.set_checkpoint_every_steps(8);
  s.mutable_resources()->set_cpus(2);
  return s;
}

using ::pendulum::train::testing::ReadEvents;

TrainResult RunTrainer(const v1::RunSpec& spec, const std::filesystem::path& dir,
                       const std::string& resume = "") {
  TrainerOptions o;
  o.spec = spec;
  o.resume_path = resume;
  return testing::RunTrainerInDir(dir, o);
}

// step → values of the "loss" Scalars events.
std::map<int64_t, std::map<std::string, double>> TrainScalars(const std::vector<v1::TrainerEvent>& events) {
  std::map<int64_t, std::map<std::string, double>> out;
  for (const auto& e : events) {
    if (e.has_scalars() && e.scalars().values().count("loss")) {
      out[e.scalars().step()] = {e.scalars().values().begin(), e.scalars().values().end()};
    }
  }
  return out;
}

TEST(TrainerTest, EventStreamFollowsTheProtocol) {
  auto dir = pendulum::testing::MakeTestTempDir();
  TrainResult r = RunTrainer(TinySpec(), dir);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.final_step, 48);
  auto events = ReadEvents(dir / "events.pb");
  ASSERT_GE(events.size(), 3u);
  ASSERT_TRUE(events.front().has_started());
  EXPECT_EQ(events.front().started().total_steps(), 48);
  ASSERT_TRUE(events.back().has_finished());
  EXPECT_TRUE(events.back().finished().ok());
  EXPECT_EQ(events.back().finished().final_step(), 48);
  int64_t points = 0, checkpoints = 0, evals = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq(), i + 1);  // 1..N, no gaps
    if (events[i].has_scalars()) points += events[i].scalars().values_size();
    if (events[i].has_scalars() && events[i].scalars().values().count("eval_acc")) ++evals;
    if (events[i].has_checkpoint()) {
      ++checkpoints;
      EXPECT_TRUE(std::filesystem::exists(dir / events[i].checkpoint().path()));
      EXPECT_EQ(events[i].checkpoint().bytes(),
                int64_t(std::filesystem::file_size(dir / events[i].checkpoint().path())));
    }
  }
  EXPECT_EQ(events.back().finished().points_emitted(), points);
  EXPECT_EQ(checkpoints, 6);  // steps 8, 16, ..., 48
  EXPECT_EQ(evals, 3);        // every epoch
  auto scalars = TrainScalars(events);
  EXPECT_EQ(scalars.size(), 12u);  // every 4 steps
  // Separable blobs: the loss falls and eval accuracy is well above chance.
  EXPECT_LT(scalars.rbegin()->second["loss"], scalars.begin()->second["loss"]);
  for (const auto& e : events) {
    if (e.has_scalars() && e.scalars().step() == 48 && e.scalars().values().count("eval_acc")) {
      EXPECT_GT(e.scalars().values().at("eval_acc"), 0.5);
    }
  }
}

TEST(TrainerTest, ResumeContinuesStepsAndLossesExactly) {
  auto full_dir = pendulum::testing::MakeTestTempDir();
  auto resumed_dir = full_dir.string() + "-resumed";
  std::filesystem::create_directories(resumed_dir);
  v1::RunSpec spec = TinySpec();
  spec.mutable_data()->set_loader_threads(0);  // resumed run uses threads: order must not matter
  ASSERT_TRUE(RunTrainer(spec, full_dir).status.ok());
  spec.mutable_data()->set_loader_threads(2);
  // Step 24 is mid-epoch (16 steps/epoch): position epoch 1, batch 8.
  TrainResult r = RunTrainer(spec, resumed_dir, (full_dir / "checkpoints" / "step-24.ckpt").string());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.final_step, 48);
  auto full = TrainScalars(ReadEvents(full_dir / "events.pb"));
  auto resumed_events = ReadEvents(std::filesystem::path(resumed_dir) / "events.pb");
  ASSERT_TRUE(resumed_events.front().has_started());
  EXPECT_EQ(resumed_events.front().started().first_step(), 24);
  EXPECT_EQ(resumed_events.front().seq(), 1u);
  auto resumed = TrainScalars(resumed_events);
  ASSERT_EQ(resumed.size(), 6u);  // steps 28, 32, ..., 48
  for (const auto& [step, values] : resumed) {
    ASSERT_TRUE(full.count(step)) << step;
    for (const char* name : {"loss", "lr", "train_acc"}) {
      EXPECT_EQ(values.at(name), full[step].at(name)) << name << " at step " << step;
    }
  }
  EXPECT_EQ(resumed.begin()->first, 28);
}

// A checkpoint whose step also ends an epoch (16, 32) or the run (max_steps
// 40) is written after that step's evaluation and method hooks, so a run
// resumed from it starts with the next step and does not evaluate the same
// epoch twice (a requeued attempt used to re-emit eval at the checkpoint step).
TEST(TrainerTest, CheckpointsAtEpochAndRunEndsFollowTheirEvaluation) {
  auto dir = pendulum::testing::MakeTestTempDir();
  v1::RunSpec spec = TinySpec();  // 16 steps/epoch, checkpoint every 8
  spec.mutable_schedule()->set_max_steps(40);
  ASSERT_TRUE(RunTrainer(spec, dir).status.ok());
  std::map<int64_t, uint64_t> eval_seq, checkpoint_seq;
  for (const auto& e : ReadEvents(dir / "events.pb")) {
    if (e.has_scalars() && e.scalars().values().count("eval_acc")) eval_seq[e.scalars().step()] = e.seq();
    if (e.has_checkpoint()) {
      EXPECT_FALSE(checkpoint_seq.count(e.checkpoint().step())) << "two checkpoints at " << e.checkpoint().step();
      checkpoint_seq[e.checkpoint().step()] = e.seq();
    }
  }
  EXPECT_EQ(checkpoint_seq.size(), 5u);  // 8, 16, 24, 32, 40
  for (int64_t step : {16, 32, 40}) {
    ASSERT_TRUE(eval_seq.count(step)) << step;
    ASSERT_TRUE(checkpoint_seq.count(step)) << step;
    EXPECT_LT(eval_seq[step], checkpoint_seq[step]) << "checkpoint at " << step << " precedes its evaluation";
  }

  auto resumed_dir = std::filesystem::path(dir.string() + "-resumed");
  std::filesystem::create_directories(resumed_dir);
  TrainResult r = RunTrainer(spec, resumed_dir, (dir / "checkpoints" / "step-16.ckpt").string());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.final_step, 40);
  std::set<int64_t> resumed_evals;
  int64_t first_scalar_step = -1;
  for (const auto& e : ReadEvents(resumed_dir / "events.pb")) {
    if (!e.has_scalars()) continue;
    if (first_scalar_step < 0) first_scalar_step = e.scalars().step();
    if (e.scalars().values().count("eval_acc")) resumed_evals.insert(e.scalars().step());
  }
  EXPECT_EQ(resumed_evals, (std::set<int64_t>{32, 40}));
  EXPECT_GT(first_scalar_step, 16);
}

TEST(TrainerTest, DivergingLossFailsWithAClearMessage) {
  auto dir = pendulum::testing::MakeTestTempDir();
  v1::RunSpec spec = TinySpec();
  spec.mutable_optimizer()->set_type("sgd");
  spec.mutable_optimizer()->set_lr(1e30);
  spec.mutable_optimizer()->set_weight_decay(0);
  spec.mutable_schedule()->set_lr_schedule("constant");
  spec.mutable_schedule()->set_warmup_epochs(0);
  TrainResult r = RunTrainer(spec, dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.status.message().find("loss is"), std::string::npos) << r.status;
  auto events = ReadEvents(dir / "events.pb");
  ASSERT_TRUE(events.back().has_finished());
  EXPECT_FALSE(events.back().finished().ok());
  EXPECT_NE(events.back().finished().message().find("diverged"), std::string::npos);
}

TEST(TrainerTest, BadArchAndMissingMethodAreSpecErrors) {
  auto dir = pendulum::testing::MakeTestTempDir();
  v1::RunSpec spec = TinySpec();
  spec.mutable_model()->set_arch("transformer_xl");
  TrainResult r = RunTrainer(spec, dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.status.message().find("spec.model.arch: 'transformer_xl' is not built"), std::string::npos);
  auto events = ReadEvents(dir / "events.pb");
  ASSERT_EQ(events.size(), 3u);  // Started, LogLine(error), Finished
  EXPECT_TRUE(events[0].has_started());
  EXPECT_EQ(events[1].log().level(), "error");
  EXPECT_FALSE(events[2].finished().ok());
  EXPECT_NE(events[2].finished().message().find("transformer_xl"), std::string::npos);
}

// A method through the registry: counts hook calls, adds a scalar, saves state.
class CountingMethod : public TrainingMethod {
 public:
  std::string name() const override { return "counting"; }
  absl::Status AfterBackward(const StepInfo& info) override {
    ++after_backward;
    return absl::OkStatus();
  }
  absl::Status AfterOptimizerStep(const StepInfo& info) override {
    last_step = info.step;
    return absl::OkStatus();
  }
  void AddStepScalars(const StepInfo& info, std::map<std::string, double>* v) override {
    (*v)["counting/after_backward"] = double(after_backward);
  }
  int after_backward = 0;
  int64_t last_step = 0;
};

TEST(TrainerTest, RegisteredMethodHooksRunAndReportScalars) {
  // Borrow the interaction_basis slot of spec.method for the counting method,
  // and give it back after: every slot has a real method linked in now. The
  // registry singleton is not const, so writing through Find's pointer is
  // well-defined; only this test does it.
  const MethodFactory counting = [](const TrainContext&) -> absl::StatusOr<std::unique_ptr<TrainingMethod>> {
    return std::unique_ptr<TrainingMethod>(new CountingMethod());
  };
  MethodRegistry::Global().Register("interaction_basis", counting);  // no-op when the real one is linked
  auto* slot = const_cast<MethodFactory*>(MethodRegistry::Global().Find("interaction_basis"));
  ASSERT_NE(slot, nullptr);
  struct Restore {
    MethodFactory* slot;
    MethodFactory saved;
    ~Restore() { *slot = std::move(saved); }
  } restore{slot, *slot};
  *slot = counting;
  auto dir = pendulum::testing::MakeTestTempDir();
  v1::RunSpec spec = TinySpec();
  spec.mutable_method()->mutable_interaction_basis();
  spec.mutable_schedule()->set_max_steps(10);
  TrainResult r = RunTrainer(spec, dir);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.final_step, 10);
  auto scalars = TrainScalars(ReadEvents(dir / "events.pb"));
  ASSERT_TRUE(scalars.count(8));
  EXPECT_EQ(scalars[8].at("counting/after_backward"), 8.0);
}

}  // namespace
}  // namespace pendulum::train
