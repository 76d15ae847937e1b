// pendulum-train as a real process: stand-alone runs on synthetic and real
// Fashion-MNIST data, the event file contract, exit codes and signals.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"
#include "pendulum/v1/run_spec.pb.h"
#include "proto/io/event_stream.h"
#include "tests/support/test_paths.h"
#include "tests/support/trainer_process.h"

namespace pendulum {
namespace {
namespace fs = std::filesystem;

using pendulum::testing::ChildProcess;
using pendulum::testing::ReadCompleteEvents;
using pendulum::testing::ReadWholeFile;
using pendulum::testing::TrainerBinary;
using pendulum::testing::WriteSpecFile;

v1::RunSpec SyntheticSpec() {
  v1::RunSpec s;
  s.set_name("synthetic-mlp");
  s.set_seed(1);
  s.mutable_model()->set_arch("mlp");
  s.mutable_model()->add_hidden(64);
  s.mutable_data()->set_dataset("synthetic");
  s.mutable_data()->mutable_synthetic()->set_num_train(512);
  s.mutable_data()->mutable_synthetic()->set_num_eval(128);
  s.mutable_data()->mutable_synthetic()->add_shape(32);
  s.mutable_data()->mutable_synthetic()->set_noise(3.0);
  s.mutable_optimizer()->set_type("sgd");
  s.mutable_optimizer()->set_lr(0.05);
  s.mutable_optimizer()->set_momentum(0.9);
  s.mutable_schedule()->set_epochs(2);
  s.mutable_schedule()->set_batch_size(32);
  s.mutable_logging()->set_metrics_every_steps(5);
  s.mutable_resources()->set_cpus(2);
  return s;
}

std::vector<std::string> Args(const fs::path& spec, const fs::path& out, std::vector<std::string> extra = {}) {
  return pendulum::testing::TrainerArgs(spec, out, 2, std::move(extra));
}

void ExpectWellFormed(const std::vector<v1::TrainerEvent>& events) {
  ASSERT_GE(events.size(), 2u);
  EXPECT_TRUE(events.front().has_started());
  EXPECT_TRUE(events.back().has_finished());
  int64_t points = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq(), i + 1);
    if (events[i].has_scalars()) points += events[i].scalars().values_size();
  }
  EXPECT_EQ(events.back().finished().points_emitted(), points);
}

TEST(TrainerProcessTest, StandaloneSyntheticRunWritesAValidEventFile) {
  auto dir = testing::MakeTestTempDir();
  ChildProcess c(Args(WriteSpecFile(dir, SyntheticSpec()), dir / "out"), dir / "stderr");
  ASSERT_EQ(c.Wait(60), 0) << ReadWholeFile(dir / "stderr");
  auto events = ReadCompleteEvents(dir / "out" / "events.pb");
  ExpectWellFormed(events);
  EXPECT_TRUE(events.back().finished().ok());
  EXPECT_EQ(events.back().finished().final_step(), 32);
  EXPECT_TRUE(fs::exists(dir / "out" / "checkpoints" / "step-32.ckpt"));
  EXPECT_NE(ReadWholeFile(dir / "stderr").find("step 30/32"), std::string::npos);  // human progress
}

TEST(TrainerProcessTest, EventsGoToTheGivenFileDescriptor) {
  auto dir = testing::MakeTestTempDir();
  v1::RunSpec spec = SyntheticSpec();
  spec.mutable_schedule()->set_max_steps(6);
  const fs::path events_path = dir / "pipe-events.pb";
  // The child inherits fd 7 (stands in for the daemon's pipe).
  int fd = open(events_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(dup2(fd, 7), 7);
  close(fd);
  ChildProcess c(Args(WriteSpecFile(dir, spec), dir / "out", {"--events-fd", "7", "--run-id", "12", "--attempt", "2"}),
          dir / "stderr");
  close(7);
  ASSERT_EQ(c.Wait(60), 0) << ReadWholeFile(dir / "stderr");
  ExpectWellFormed(ReadCompleteEvents(events_path));
  EXPECT_FALSE(fs::exists(dir / "out" / "events.pb"));
}

TEST(TrainerProcessTest, JsonSpecIsAccepted) {
  auto dir = testing::MakeTestTempDir();
  std::ofstream(dir / "spec.json") << R"({
    "name": "json-spec",
    "model": {"arch": "mlp", "hidden": [16]},
    "data": {"dataset": "synthetic", "synthetic": {"num_train": 64, "num_eval": 16, "shape": [8]}},
    "optimizer": {"type": "adam", "lr": 0.01},
    "schedule": {"epochs": 1, "batch_size": 16}
  })";
  ChildProcess c(Args(dir / "spec.json", dir / "out"), dir / "stderr");
  ASSERT_EQ(c.Wait(60), 0) << ReadWholeFile(dir / "stderr");
  auto events = ReadCompleteEvents(dir / "out" / "events.pb");
  ExpectWellFormed(events);
  EXPECT_EQ(events.back().finished().final_step(), 4);
}

TEST(TrainerProcessTest, RealFashionMnistLossFalls) {
  const fs::path data_dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(data_dir / "train-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  auto dir = testing::MakeTestTempDir();
  v1::RunSpec s;
  s.set_name("fmnist-mlp");
  s.set_seed(3);
  s.mutable_model()->set_arch("mlp");
  s.mutable_model()->add_hidden(128);
  s.mutable_data()->set_dataset("fashion_mnist");
  s.mutable_data()->set_train_subset(4096);
  s.mutable_data()->set_eval_subset(1000);
  s.mutable_data()->set_loader_threads(1);
  s.mutable_optimizer()->set_type("adamw");
  s.mutable_optimizer()->set_lr(2e-3);
  s.mutable_schedule()->set_epochs(2);
  s.mutable_schedule()->set_batch_size(64);  // 128 steps
  s.mutable_schedule()->set_lr_schedule("cosine");
  s.mutable_logging()->set_metrics_every_steps(16);
  const auto t0 = std::chrono::steady_clock::now();
  ChildProcess c(Args(WriteSpecFile(dir, s), dir / "out"), dir / "stderr");
  ASSERT_EQ(c.Wait(120), 0) << ReadWholeFile(dir / "stderr");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto events = ReadCompleteEvents(dir / "out" / "events.pb");
  ExpectWellFormed(events);
  std::vector<double> losses;
  double eval_acc = 0;
  for (const auto& e : events) {
    if (!e.has_scalars()) continue;
    const auto& v = e.scalars().values();
    if (v.count("loss")) losses.push_back(v.at("loss"));
    if (v.count("eval_acc")) eval_acc = v.at("eval_acc");
  }
  ASSERT_EQ(losses.size(), 8u);
  // Chance is ln(10) = 2.30; a real MLP gets well below 1 within two epochs.
  EXPECT_GT(losses.front(), losses.back() + 0.3);
  EXPECT_LT(losses.back(), 0.8);
  EXPECT_GT(eval_acc, 0.7);
  std::cerr << "fashion-mnist: first loss " << losses.front() << ", last " << losses.back()
            << ", eval_acc " << eval_acc << ", " << secs << " s\n";
}

TEST(TrainerProcessTest, MissingDatasetExits3NamingThePath) {
  auto dir = testing::MakeTestTempDir();
  v1::RunSpec s = SyntheticSpec();
  s.mutable_data()->set_dataset("fashion_mnist");
  s.mutable_data()->clear_synthetic();  // the validator rejects synthetic options here
  s.mutable_data()->set_path((dir / "no-such-dir").string());
  ChildProcess c(Args(WriteSpecFile(dir, s), dir / "out"), dir / "stderr");
  EXPECT_EQ(c.Wait(60), 3);
  EXPECT_NE(ReadWholeFile(dir / "stderr").find((dir / "no-such-dir").string()), std::string::npos);
  auto events = ReadCompleteEvents(dir / "out" / "events.pb");
  ExpectWellFormed(events);
  EXPECT_FALSE(events.back().finished().ok());
  EXPECT_NE(events.back().finished().message().find("no-such-dir"), std::string::npos);
}

TEST(TrainerProcessTest, BadCommandLineAndSpecExit2) {
  auto dir = testing::MakeTestTempDir();
  ChildProcess a({TrainerBinary().string(), "--spec", "x.pb"}, dir / "stderr-a");
  EXPECT_EQ(a.Wait(30), 2);
  EXPECT_NE(ReadWholeFile(dir / "stderr-a").find("--out is required"), std::string::npos);
  ChildProcess b({TrainerBinary().string(), "--spec", "x.pb", "--out", dir.string(), "--bogus", "1"}, dir / "stderr-b");
  EXPECT_EQ(b.Wait(30), 2);
  std::ofstream(dir / "garbage.pb") << "\xff\xff\xff not a proto";
  ChildProcess c(Args(dir / "garbage.pb", dir / "out"), dir / "stderr-c");
  EXPECT_EQ(c.Wait(30), 2);
  auto events = ReadCompleteEvents(dir / "out" / "events.pb");
  ExpectWellFormed(events);
  EXPECT_NE(events.back().finished().message().find("invalid spec"), std::string::npos);
}

// Waits until the events file satisfies `pred` (or the timeout passes).
template <typename Pred>
bool WaitForEvents(const fs::path& path, Pred pred, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred(ReadCompleteEvents(path))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(TrainerProcessTest, Sigusr1CheckpointsAndSigtermStopsWith143) {
  auto dir = testing::MakeTestTempDir();
  v1::RunSpec s = SyntheticSpec();
  s.mutable_schedule()->set_epochs(1000);  // runs until stopped
  s.mutable_data()->mutable_synthetic()->set_num_train(100000);  // 3125 steps per epoch
  s.mutable_schedule()->set_lr_schedule("constant");
  s.mutable_logging()->set_metrics_every_steps(1);
  const fs::path events = dir / "out" / "events.pb";
  ChildProcess c(Args(WriteSpecFile(dir, s), dir / "out"), dir / "stderr");
  auto has_scalars = [](const std::vector<v1::TrainerEvent>& ev) {
    for (const auto& e : ev) if (e.has_scalars()) return true;
    return false;
  };
  ASSERT_TRUE(WaitForEvents(events, has_scalars, 60)) << ReadWholeFile(dir / "stderr");
  // With checkpoint_every_steps 0 and long epochs, checkpoints come only from
  // the signals here; count them before and after.
  auto checkpoints = [](const std::vector<v1::TrainerEvent>& ev) {
    int n = 0;
    for (const auto& e : ev) n += e.has_checkpoint();
    return n;
  };
  const int before = checkpoints(ReadCompleteEvents(events));
  ASSERT_EQ(kill(c.pid(), SIGUSR1), 0);
  ASSERT_TRUE(WaitForEvents(events, [&](const auto& ev) { return checkpoints(ev) > before; }, 30));
  ASSERT_EQ(kill(c.pid(), SIGTERM), 0);
  EXPECT_EQ(c.Wait(30), 143) << ReadWholeFile(dir / "stderr");
  auto ev = ReadCompleteEvents(events);
  ExpectWellFormed(ev);
  ASSERT_TRUE(ev.back().has_finished());
  EXPECT_FALSE(ev.back().finished().ok());
  EXPECT_EQ(ev.back().finished().message(), "terminated");
  const int64_t final_step = ev.back().finished().final_step();
  ASSERT_TRUE(ev[ev.size() - 2].has_checkpoint());  // the SIGTERM checkpoint, just before Finished
  EXPECT_EQ(ev[ev.size() - 2].checkpoint().step(), final_step);
  const fs::path ckpt = dir / "out" / ev[ev.size() - 2].checkpoint().path();
  ASSERT_TRUE(fs::exists(ckpt));

  // The requeued attempt resumes from it and continues the step numbering.
  s.mutable_schedule()->set_max_steps(final_step + 3);
  ChildProcess r(Args(WriteSpecFile(dir, s), dir / "out2", {"--resume", ckpt.string()}), dir / "stderr2");
  ASSERT_EQ(r.Wait(60), 0) << ReadWholeFile(dir / "stderr2");
  auto ev2 = ReadCompleteEvents(dir / "out2" / "events.pb");
  ExpectWellFormed(ev2);
  EXPECT_EQ(ev2.front().started().first_step(), final_step);
  EXPECT_EQ(ev2.back().finished().final_step(), final_step + 3);
  int64_t first_scalar_step = -1;
  for (const auto& e : ev2) {
    if (e.has_scalars()) {
      first_scalar_step = e.scalars().step();
      break;
    }
  }
  EXPECT_EQ(first_scalar_step, final_step + 1);
}

}  // namespace
}  // namespace pendulum
