// CUDA checks, label `gpu`: built only when the LibTorch found has CUDA, and
// run on a GPU host by scripts/gpu/build_and_test.sh (CI has no GPU). On a
// CUDA build without a usable device they fail rather than skip, so a GPU
// host that lost its driver does not look green.
//
// What they pin down: the OFQ quantizers compute the same values and
// gradients on CUDA as on the CPU (the CPU results are what the reference
// vectors check); bf16 autocast is on in the forward pass only; a fractional
// run's memory cap really stops allocations beyond its share; and the trainer
// runs a W2A2 tiny ViT with oscillation tracking on the GPU.
#include <cmath>
#include <filesystem>
#include <string>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/cuda.h>

#include "gtest/gtest.h"
#include "tests/support/test_paths.h"
#include "tests/unit/train/read_events.h"
#include "tests/unit/train/run_trainer.h"
#include "worker/train/core/autocast_scope.h"
#include "worker/train/core/gpu_memory_cap.h"
#include "worker/train/core/trainer.h"
#include "worker/train/quant/lsq_quantizer.h"
#include "worker/train/quant/statsq_quantizer.h"

namespace pendulum::train {
namespace {

namespace q = pendulum::train::quant;
using ::pendulum::train::testing::ReadEvents;

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(torch::cuda::is_available()) << "gpu-labelled tests need a CUDA device (none visible)";
  }
  const at::Device cuda_{at::kCUDA, 0};
};

void ExpectClose(const at::Tensor& cpu, const at::Tensor& cuda, double atol, const std::string& what) {
  ASSERT_EQ(cpu.sizes(), cuda.sizes()) << what;
  const double diff = (cpu.to(at::kDouble) - cuda.cpu().to(at::kDouble)).abs().max().item<double>();
  EXPECT_LE(diff, atol) << what << ": max |cpu - cuda| = " << diff;
}

TEST_F(CudaTest, StatsQMatchesTheCpuInValuesCodesAndGradients) {
  at::manual_seed(3);
  for (int bits : {2, 3, 4, 8}) {
    at::Tensor w_cpu = at::randn({96, 48}).mul_(0.05).requires_grad_(true);
    at::Tensor w_gpu = w_cpu.detach().to(cuda_).requires_grad_(true);
    q::StatsQResult a = q::StatsQuantize(w_cpu, bits);
    q::StatsQResult b = q::StatsQuantize(w_gpu, bits);
    const std::string tag = "statsq " + std::to_string(bits) + "-bit";
    ExpectClose(a.scale, b.scale, 1e-7, tag + " scale");
    ExpectClose(a.output, b.output, 1e-6, tag + " output");
    // Codes may differ only where the latent sits on a rounding tie within float noise.
    const int64_t differing = a.codes.ne(b.codes.cpu()).sum().item<int64_t>();
    EXPECT_LE(differing, 1) << tag << ": codes differ at " << differing << " of " << a.codes.numel();
    at::Tensor g = at::randn({96, 48});
    (a.output * g).sum().backward();
    (b.output * g.to(cuda_)).sum().backward();
    ExpectClose(w_cpu.grad(), w_gpu.grad(), 1e-6, tag + " grad");
  }
}

TEST_F(CudaTest, LsqMatchesTheCpuInValuesAndBothGradients) {
  at::manual_seed(4);
  for (int bits : {2, 4}) {
    q::LsqQuantizerOptions opt(bits);
    opt.granularity(q::LsqGranularity::kPerToken);
    at::Tensor x_cpu = at::randn({8, 17, 32}).requires_grad_(true);
    at::Tensor s_cpu = q::LsqInitScale(x_cpu.detach(), opt).requires_grad_(true);
    at::Tensor x_gpu = x_cpu.detach().to(cuda_).requires_grad_(true);
    at::Tensor s_gpu = s_cpu.detach().to(cuda_).requires_grad_(true);
    q::LsqResult a = q::LsqFakeQuant(x_cpu, s_cpu, opt);
    q::LsqResult b = q::LsqFakeQuant(x_gpu, s_gpu, opt);
    const std::string tag = "lsq " + std::to_string(bits) + "-bit";
    ExpectClose(a.output, b.output, 1e-5, tag + " output");
    at::Tensor g = at::randn(a.output.sizes());
    (a.output * g).sum().backward();
    (b.output * g.to(cuda_)).sum().backward();
    ExpectClose(x_cpu.grad(), x_gpu.grad(), 1e-5, tag + " grad x");
    ExpectClose(s_cpu.grad(), s_gpu.grad(), 1e-4, tag + " grad s");
  }
}

TEST_F(CudaTest, Bf16AutocastCoversTheScopeOnlyAndRestores) {
  at::Tensor x = at::randn({4, 16}, at::TensorOptions().device(cuda_));
  at::Tensor w = at::randn({8, 16}, at::TensorOptions().device(cuda_));
  EXPECT_EQ(at::linear(x, w).scalar_type(), at::kFloat);
  {
    AutocastScope outer(Precision::kBf16Autocast);
    EXPECT_TRUE(AutocastScope::CudaAutocastEnabled());
    EXPECT_EQ(at::linear(x, w).scalar_type(), at::kBFloat16);
    {
      AutocastScope inner(Precision::kBf16Autocast);
      EXPECT_EQ(at::linear(x, w).scalar_type(), at::kBFloat16);
    }
    EXPECT_TRUE(AutocastScope::CudaAutocastEnabled()) << "leaving a nested scope turned autocast off";
    // Losses stay float32 under autocast.
    at::Tensor labels = at::zeros({4}, at::TensorOptions().device(cuda_).dtype(at::kLong));
    EXPECT_EQ(at::cross_entropy_loss(at::linear(x, w), labels).scalar_type(), at::kFloat);
  }
  EXPECT_FALSE(AutocastScope::CudaAutocastEnabled());
  EXPECT_EQ(at::linear(x, w).scalar_type(), at::kFloat);
  AutocastScope off(Precision::kFloat32);
  EXPECT_EQ(at::linear(x, w).scalar_type(), at::kFloat);
}

TEST_F(CudaTest, AutoPrecisionIsBf16OnCudaAndFp32OnCpu) {
  EXPECT_EQ(*ResolvePrecision("auto", cuda_), Precision::kBf16Autocast);
  EXPECT_EQ(*ResolvePrecision("bf16", cuda_), Precision::kBf16Autocast);
  EXPECT_EQ(*ResolvePrecision("fp32", cuda_), Precision::kFloat32);
  EXPECT_EQ(*ResolvePrecision("auto", at::Device(at::kCPU)), Precision::kFloat32);
}

// Runs alone in its process (ctest runs each discovered test separately), so
// the cap does not leak into other tests.
TEST_F(CudaTest, MemoryCapStopsAllocationsBeyondTheShare) {
  auto applied = ApplyGpuMemoryCap(0.02, 0);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_NE(applied->find("capped"), std::string::npos) << *applied;
  // 2% of an 80-141 GiB card is 1.6-2.8 GiB: 256 MiB fits, 16 GiB does not.
  at::Tensor small = at::empty({256LL << 20}, at::TensorOptions().device(cuda_).dtype(at::kByte));
  EXPECT_EQ(small.numel(), 256LL << 20);
  bool refused = false;
  try {
    at::Tensor big = at::empty({16LL << 30}, at::TensorOptions().device(cuda_).dtype(at::kByte));
  } catch (const c10::Error& e) {
    refused = true;
    EXPECT_NE(std::string(e.what()).find("memory"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(refused) << "a 16 GiB allocation passed a 2% cap";
}

v1::RunSpec TinyVitW2A2Spec(int64_t steps) {
  v1::RunSpec s;
  s.set_name("cuda-vit-w2a2");
  s.set_seed(7);
  s.mutable_model()->set_arch("vit_tiny28");
  auto* d = s.mutable_data();
  d->set_dataset("synthetic");
  d->mutable_synthetic()->set_num_train(2048);
  d->mutable_synthetic()->set_num_eval(256);
  d->mutable_synthetic()->set_num_classes(10);
  for (uint32_t n : {1u, 28u, 28u}) d->mutable_synthetic()->add_shape(n);
  d->mutable_synthetic()->set_noise(1.0);
  auto* ofq = s.mutable_method()->mutable_ofq();
  ofq->set_weight_quantizer("statsq");
  ofq->set_weight_bits(2);
  ofq->set_act_bits(2);
  s.mutable_optimizer()->set_type("adamw");
  s.mutable_optimizer()->set_lr(1e-3);
  s.mutable_optimizer()->set_weight_decay(0.05);
  s.mutable_schedule()->set_max_steps(steps);
  s.mutable_schedule()->set_epochs(10);
  s.mutable_schedule()->set_batch_size(64);
  s.mutable_schedule()->set_lr_schedule("cosine");
  s.mutable_logging()->set_metrics_every_steps(10);
  s.mutable_logging()->set_oscillation_every_steps(20);
  s.mutable_resources()->set_gpus(1);
  s.mutable_resources()->set_cpus(4);
  return s;
}

struct RunOutcome {
  TrainResult result;
  std::vector<v1::TrainerEvent> events;
};

RunOutcome RunOnCuda(const v1::RunSpec& spec, const std::string& precision) {
  auto dir = pendulum::testing::MakeTestTempDir();
  TrainerOptions o;
  o.spec = spec;
  o.precision = precision;
  RunOutcome out;
  out.result = testing::RunTrainerInDir(dir, o);
  out.events = ReadEvents(dir / "events.pb");
  return out;
}

void ExpectTrainedOnCuda(const RunOutcome& run, const std::string& precision_log) {
  ASSERT_TRUE(run.result.status.ok()) << run.result.status;
  ASSERT_FALSE(run.events.empty());
  ASSERT_TRUE(run.events.front().has_started());
  EXPECT_EQ(run.events.front().started().device(), "cuda:0");
  bool logged = false;
  int oscillation_events = 0;
  double first_loss = -1, last_loss = -1;
  for (const auto& e : run.events) {
    if (e.has_log() && e.log().text().find(precision_log) != std::string::npos) logged = true;
    if (e.has_oscillation()) ++oscillation_events;
    if (e.has_scalars() && e.scalars().values().count("loss")) {
      const double loss = e.scalars().values().at("loss");
      EXPECT_TRUE(std::isfinite(loss));
      if (first_loss < 0) first_loss = loss;
      last_loss = loss;
    }
  }
  EXPECT_TRUE(logged) << "no log line says '" << precision_log << "'";
  EXPECT_GT(oscillation_events, 0) << "the oscillation tracker emitted nothing on CUDA";
  EXPECT_LT(last_loss, first_loss) << "W2A2 ViT did not learn separable blobs on CUDA";
  ASSERT_TRUE(run.events.back().has_finished());
  EXPECT_TRUE(run.events.back().finished().ok());
}

TEST_F(CudaTest, TrainerRunsAW2A2TinyVitWithBf16AutocastByDefault) {
  ExpectTrainedOnCuda(RunOnCuda(TinyVitW2A2Spec(120), "auto"), "precision bf16 autocast");
}

TEST_F(CudaTest, TrainerRunsAW2A2TinyVitInFp32WhenAsked) {
  ExpectTrainedOnCuda(RunOnCuda(TinyVitW2A2Spec(120), "fp32"), "precision fp32");
}

}  // namespace
}  // namespace pendulum::train
