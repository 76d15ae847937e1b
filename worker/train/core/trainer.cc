#include "worker/train/core/trainer.h"
#include "worker/train/core/autocast_scope.h"
#include "worker/train/core/gpu_memory_cap.h"
#include "worker/train/core/process_tuning.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/cuda.h>
#include <torch/types.h>  // clip_grad.h uses torch::Tensor without including it
#include <torch/nn/utils/clip_grad.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "worker/train/core/checkpoint.h"
#include "worker/train/core/lr_schedule.h"
#include "worker/train/core/method_registry.h"
#include "worker/train/core/optimizer_factory.h"
#include "worker/train/core/signals.h"
#include "worker/train/data/data_loader.h"
#include "worker/train/data/dataset_factory.h"
#include "worker/train/models/model_factory.h"

namespace pendulum::train {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// A failure with the exit code the protocol assigns to it.
struct Failure {
  absl::Status status;
  int exit_code;
};

#define PENDULUM_TRY(expr, code)                                 \
  do {                                                           \
    ::absl::Status pendulum_try_status_ = (expr);                \
    if (!pendulum_try_status_.ok()) return Failure{pendulum_try_status_, (code)}; \
  } while (0)

// Bad spec / unsupported option → 2, anything else in setup → 1.
int SetupExitCode(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument || s.code() == absl::StatusCode::kUnimplemented ? 2 : 1;
}

// Running sums over the current metrics window.
struct Window {
  double loss_sum = 0;
  int64_t steps = 0;
  int64_t correct = 0;
  int64_t examples = 0;
  int64_t counted_examples = 0;  // examples with logits (for train_acc)
  std::map<std::string, double> method_sums;
  Clock::time_point start = Clock::now();
  double paused_s = 0;  // evaluation and checkpoint time inside the window: not training
  void Reset() { *this = Window(); }
  double TrainingSeconds() const {
    return std::chrono::duration<double>(Clock::now() - start).count() - paused_s;
  }
};

}  // namespace

class Trainer::Impl {
 public:
  Impl(const TrainerOptions& o, EventWriter* ev) : o_(o), spec_(o.spec), ev_(ev) {}

  TrainResult Run() {
    std::optional<Failure> failure;
    try {
      failure = Execute();
    } catch (const c10::Error& e) {
      failure = Failure{absl::InternalError(absl::StrCat("torch error at step ", pos_.step, ": ",
                                                         e.what_without_backtrace())),
                        1};
    } catch (const std::exception& e) {
      failure = Failure{absl::InternalError(absl::StrCat("error at step ", pos_.step, ": ", e.what())), 1};
    }
    TrainResult result;
    result.final_step = pos_.step;
    if (!started_) {
      // Started must precede Finished even when setup failed.
      ev_->EmitStarted(pos_.step, 0, device_.str()).IgnoreError();  // best effort; failing anyway
      started_ = true;
    }
    if (failure.has_value()) {
      result.status = failure->status;
      result.exit_code = failure->exit_code;
      const std::string message =
          failure->exit_code == 143 ? "terminated" : std::string(failure->status.message());
      if (failure->exit_code != 143) {
        std::fprintf(stderr, "pendulum-train: FAILED: %s\n", std::string(failure->status.message()).c_str());
        ev_->EmitLog("error", message).IgnoreError();  // the Finished message carries it too
      }
      ev_->EmitFinished(false, message, pos_.step).IgnoreError();  // best effort on the failure path
      return result;
    }
    absl::Status fin = ev_->EmitFinished(true, method_ != nullptr ? method_->ResultSummary() : "", pos_.step);
    if (!fin.ok()) {
      result.status = fin;
      result.exit_code = 1;
    }
    return result;
  }

 private:
  std::optional<Failure> Execute() {
    SetThreads();
    SelectDevice();
    // A fractional-GPU run's share of device memory (set by pendulum-worker).
    absl::StatusOr<double> share = GpuMemoryFractionFromEnv();
    if (!share.ok()) return Failure{share.status(), 2};
    absl::StatusOr<std::string> capped = ApplyGpuMemoryCap(*share, device_.is_cuda() ? device_.index() : -1);
    if (!capped.ok()) return Failure{capped.status(), 2};
    if (!capped->empty()) Log("info", *capped);
    absl::StatusOr<Precision> precision = ResolvePrecision(o_.precision, device_);
    if (!precision.ok()) return Failure{precision.status(), 2};
    precision_ = *precision;
    Log("info", absl::StrCat("device ", device_.str(), ", precision ", PrecisionName(precision_)));

    // Data (exit 3 on any error: missing/corrupt files, bad data fields).
    auto data = LoadData(spec_.data(), spec_.seed());
    if (!data.ok()) {
      return Failure{data.status(), data.status().code() == absl::StatusCode::kInvalidArgument ||
                                            data.status().code() == absl::StatusCode::kUnimplemented
                                        ? 2 : 3};
    }
    data_ = std::move(*data);
    if (data_.train.size() == 0) return Failure{absl::InvalidArgumentError("the training set is empty"), 3};
    Progress(absl::StrFormat("data: %s %d examples, %s %d examples, %d classes", data_.train.name,
                             data_.train.size(), data_.eval.name, data_.eval.size(), data_.train.num_classes));

    // Model: initialisation is drawn from torch's global generator, seeded here.
    at::manual_seed(spec_.seed());
    ModelInputs inputs;
    inputs.num_classes = data_.train.num_classes;
    inputs.example_shape = data_.train.example_shape;
    auto model = MakeModel(spec_.model(), inputs);
    if (!model.ok()) return Failure{model.status(), SetupExitCode(model.status())};
    model_ = *model;
    if (auto f = LoadInit(); f) return f;
    if (auto f = LoadTeacher(inputs); f) return f;

    // Method.
    ctx_.spec = &spec_;
    ctx_.device = device_;
    ctx_.events = ev_;
    ctx_.out_dir = o_.out_dir;
    ctx_.train_data = &data_.train;
    ctx_.eval_data = &data_.eval;
    ctx_.inputs = inputs;
    ctx_.teacher = teacher_;
    ctx_.total_steps = EstimateTotalSteps();
    auto method = MakeMethod(ctx_);
    if (!method.ok()) return Failure{method.status(), SetupExitCode(method.status())};
    method_ = std::move(*method);
    PENDULUM_TRY(method_->Setup(ctx_, &model_), SetupExitCode(pendulum_try_status_));
    {
      const int64_t batch = spec_.schedule().batch_size() > 0 ? spec_.schedule().batch_size() : 64;
      int64_t planned = method_->PlannedTotalSteps(batch, spec_.schedule().epochs());
      const int64_t max_steps = int64_t(spec_.schedule().max_steps());
      if (planned > 0 && max_steps > 0) planned = std::min(planned, max_steps);
      if (planned > 0) ctx_.total_steps = planned;
    }
    model_->to(device_);

    std::unique_ptr<CheckpointReader> resume;
    if (!o_.resume_path.empty()) {
      auto r = CheckpointReader::Open(o_.resume_path);
      if (!r.ok()) return Failure{r.status(), r.status().code() == absl::StatusCode::kNotFound ? 2 : 1};
      resume = std::move(*r);
      if (method_ != nullptr) PENDULUM_TRY(resume->LoadMethod(method_.get()), 1);
      pos_ = resume->position();
    }
    return TrainStages(resume.get());
  }

  std::optional<Failure> TrainStages(CheckpointReader* resume) {
    const int num_stages = method_->NumStages();
    bool done = false;
    for (int stage = int(pos_.stage); stage < num_stages && !done; ++stage) {
      StagePlan plan;
      plan.resuming = resume != nullptr && stage == pos_.stage;
      ModelPtr before = model_;
      PENDULUM_TRY(method_->BeginStage(stage, &model_, &plan), 1);
      if (model_ != before) model_->to(device_);
      if (!plan.label.empty()) Progress(plan.label);

      DataLoaderOptions lo;
      lo.batch_size = spec_.schedule().batch_size() > 0 ? spec_.schedule().batch_size() : 64;
      lo.shuffle = true;
      lo.augment = spec_.data().augment();
      lo.drop_last = true;
      lo.seed = spec_.seed();
      lo.threads = int(spec_.data().loader_threads());
      lo.prefetch = spec_.data().prefetch() > 0 ? int(spec_.data().prefetch()) : 2;
      DataLoader train_loader(&data_.train, plan.train_indices, lo);
      DataLoaderOptions eo = lo;
      eo.batch_size = spec_.schedule().eval_batch_size() > 0 ? spec_.schedule().eval_batch_size() : lo.batch_size;
      eo.shuffle = false;
      eo.augment = false;
      eo.drop_last = false;
      eo.threads = 0;  // evaluation is short; keep its batches on this thread
      DataLoader eval_loader(&data_.eval, plan.eval_indices, eo);

      const int64_t spe = train_loader.batches_per_epoch();
      if (spe == 0) return Failure{absl::FailedPreconditionError(absl::StrCat("stage ", stage, " has no training examples")), 1};
      const uint64_t max_steps = spec_.schedule().max_steps();
      int64_t stage_epochs = plan.epochs > 0 ? plan.epochs : spec_.schedule().epochs();
      if (stage_epochs == 0) {
        if (max_steps == 0) {
          return Failure{absl::InvalidArgumentError("spec.schedule: one of epochs / max_steps must be > 0"), 2};
        }
        const int64_t left = int64_t(max_steps) - pos_.stage_start_step;
        stage_epochs = std::max<int64_t>(1, (left + spe - 1) / spe);
      }
      int64_t stage_total = stage_epochs * spe;
      if (max_steps > 0) stage_total = std::min<int64_t>(stage_total, int64_t(max_steps) - pos_.stage_start_step);
      stage_total = std::max<int64_t>(1, stage_total);
      auto schedule = LrSchedule::Create(spec_.schedule(), spec_.optimizer().lr(), spe, stage_total);
      if (!schedule.ok()) return Failure{schedule.status(), 2};

      if (!optimizer_ || plan.rebuild_optimizer) {
        auto opt = MakeOptimizer(spec_.optimizer(), *model_, method_.get());
        if (!opt.ok()) return Failure{opt.status(), SetupExitCode(opt.status())};
        optimizer_ = std::move(*opt);
      }
      if (plan.resuming) {
        PENDULUM_TRY(resume->LoadModel(model_.get(), /*strict=*/true), 1);
        PENDULUM_TRY(resume->LoadOptimizer(optimizer_.get()), 1);
        PENDULUM_TRY(resume->RestoreRng(), 1);
        last_checkpoint_step_ = pos_.step;
      } else if (init_optimizer_ != nullptr && stage == 0) {
        PENDULUM_TRY(init_optimizer_->LoadOptimizer(optimizer_.get()), 1);
      }
      if (!started_) {
        if (num_stages == 1) ctx_.total_steps = pos_.stage_start_step + stage_total;
        PENDULUM_TRY(ev_->EmitStarted(pos_.step, ctx_.total_steps, device_.str()), 1);
        started_ = true;
        FlushPendingLogs();
        if (resume != nullptr) {
          Log("info", absl::StrCat("resumed from ", o_.resume_path, " at step ", pos_.step, " (epoch ",
                                   pos_.epoch, ", batch ", pos_.batch_in_epoch, ")"));
        }
        Progress(absl::StrFormat("training %s (%s, %s) on %s: %d steps/epoch, %d steps, %d threads",
                                 spec_.name(), spec_.model().arch(), method_->name(), device_.str(), spe,
                                 ctx_.total_steps, at::get_num_threads()));
      }

      // Stage-start checkpoint (stages after the first): the model already has
      // this stage's shape and the method state holds what EndStage of the
      // previous stage built, so a requeued run resumes inside this stage.
      if (stage > 0 && !plan.resuming && pos_.epoch_in_stage == 0 && pos_.batch_in_epoch == 0 &&
          last_checkpoint_step_ != pos_.step) {
        PENDULUM_TRY(Checkpoint(), 1);
      }
      for (; pos_.epoch_in_stage < stage_epochs && !done; ) {
        train_loader.StartEpoch(pos_.epoch, pos_.batch_in_epoch);
        while (true) {
          if (max_steps > 0 && pos_.step >= int64_t(max_steps)) {
            done = true;
            break;
          }
          if (TerminationRequested()) return Terminate();
          if (TakeCheckpointRequest()) PENDULUM_TRY(Checkpoint(), 1);
          std::optional<Batch> batch = train_loader.Next();
          if (!batch.has_value()) break;
          PENDULUM_TRY(Step(*batch, stage, spe, *schedule), 1);
          // A step that also ends the epoch or the run is checkpointed later
          // at the same step, after the evaluation and the method hooks
          // (OnEpochEnd, EndStage, OnTrainEnd): a checkpoint taken here would
          // hold a finished epoch not yet evaluated (a run resumed from it
          // evaluated it twice), and the final checkpoint, skipped for an
          // already checkpointed step, would miss what EndStage built.
          const bool checkpointed_later =
              pos_.batch_in_epoch >= spe || (max_steps > 0 && pos_.step >= int64_t(max_steps));
          if (spec_.checkpoint_every_steps() > 0 && pos_.step % spec_.checkpoint_every_steps() == 0 &&
              !checkpointed_later) {
            PENDULUM_TRY(Checkpoint(), 1);
          }
        }
        if (pos_.batch_in_epoch < spe) break;  // stopped by max_steps mid-epoch
        // Epoch complete.
        const uint32_t every = spec_.schedule().has_eval_every_epochs() ? spec_.schedule().eval_every_epochs() : 1;
        if (every > 0 && (pos_.epoch_in_stage + 1) % every == 0) PENDULUM_TRY(Evaluate(eval_loader, stage, spe), 1);
        PENDULUM_TRY(method_->OnEpochEnd(Info(stage, spe)), 1);
        ++pos_.epoch;
        ++pos_.epoch_in_stage;
        pos_.batch_in_epoch = 0;
        if (max_steps > 0 && pos_.step >= int64_t(max_steps)) done = true;
        // End-of-epoch checkpoint (the spec's "0 = only at the end of each
        // epoch"; with a step interval it still bounds the work lost). A
        // stage's last epoch is covered by the checkpoint written after
        // EndStage (memory, teacher) at the same step: the next stage's start
        // checkpoint, or the final one after OnTrainEnd, so the last stage's
        // exemplar memory is in the run's last checkpoint too. One file per
        // step avoids rewriting a checkpoint the daemon may be uploading.
        const bool next_stage_checkpoints = pos_.epoch_in_stage >= stage_epochs;
        if (last_checkpoint_step_ != pos_.step && !next_stage_checkpoints) PENDULUM_TRY(Checkpoint(), 1);
      }
      if (last_eval_step_ != pos_.step) PENDULUM_TRY(Evaluate(eval_loader, stage, spe), 1);
      PENDULUM_TRY(method_->EndStage(stage, Info(stage, spe)), 1);
      if (stage + 1 < num_stages && !done) {
        ++pos_.stage;
        pos_.epoch_in_stage = 0;
        pos_.batch_in_epoch = 0;
        pos_.stage_start_step = pos_.step;
      }
      last_spe_ = spe;
    }
    PENDULUM_TRY(method_->OnTrainEnd(Info(int(pos_.stage), last_spe_)), 1);
    if (last_checkpoint_step_ != pos_.step) PENDULUM_TRY(Checkpoint(), 1);
    Progress(absl::StrFormat("done: %d steps", pos_.step));
    return std::nullopt;
  }

  // Steps of a one-stage run over the whole training set (methods with
  // stages know better; 0 when unknown).
  int64_t EstimateTotalSteps() const {
    const int64_t b = spec_.schedule().batch_size() > 0 ? spec_.schedule().batch_size() : 64;
    const int64_t n = data_.train.size();
    const int64_t spe = n >= b ? n / b : 1;
    int64_t total = int64_t(spec_.schedule().epochs()) * spe;
    const int64_t max_steps = int64_t(spec_.schedule().max_steps());
    if (max_steps > 0 && (total == 0 || max_steps < total)) total = max_steps;
    return total;
  }

  StepInfo Info(int stage, int64_t spe) const {
    StepInfo info;
    info.step = pos_.step;
    info.stage = stage;
    info.epoch = pos_.epoch;
    info.batch_in_epoch = pos_.batch_in_epoch;
    info.steps_per_epoch = spe;
    info.lr = lr_;
    return info;
  }

  absl::Status Step(const Batch& cpu_batch, int stage, int64_t spe, const LrSchedule& schedule) {
    StepInfo info = Info(stage, spe);
    info.step = pos_.step + 1;  // the step being taken
    lr_ = schedule.At(info.step - pos_.stage_start_step);
    info.lr = lr_;
    SetLearningRate(optimizer_.get(), lr_);
    model_->train();
    Batch batch;
    batch.x = cpu_batch.x.to(device_);
    batch.y = cpu_batch.y.to(device_);
    batch.indices = cpu_batch.indices;

    // Forward (and the loss) under autocast; backward outside it, as in Python.
    std::optional<AutocastScope> autocast(std::in_place, precision_);
    auto out = method_->ComputeLoss(batch, info);
    autocast.reset();
    if (!out.ok()) return out.status();
    const double loss = out->loss.item<double>();
    if (!std::isfinite(loss)) {
      return absl::InternalError(absl::StrFormat(
          "loss is %s at step %d (epoch %d, batch %d, lr %g); training diverged — try a lower "
          "optimizer.lr or optimizer.grad_clip_norm",
          std::isnan(loss) ? "NaN" : "infinite", info.step, pos_.epoch, pos_.batch_in_epoch, lr_));
    }
    optimizer_->zero_grad();
    out->loss.backward();
    if (auto s = method_->AfterBackward(info); !s.ok()) return s;
    if (spec_.optimizer().grad_clip_norm() > 0) {
      std::vector<at::Tensor> params;
      for (const auto& p : model_->parameters()) {
        if (p.grad().defined()) params.push_back(p);
      }
      torch::nn::utils::clip_grad_norm_(params, spec_.optimizer().grad_clip_norm());
    }
    const uint32_t every = spec_.logging().has_metrics_every_steps() ? spec_.logging().metrics_every_steps() : 10;
    auto* optimizer_metrics = dynamic_cast<OptimizerMetrics*>(optimizer_.get());
    if (optimizer_metrics != nullptr && every > 0 && (pos_.step + 1) % every == 0) {
      optimizer_metrics->PrepareMetricStep();
    }
    optimizer_->step();
    if (auto s = method_->AfterOptimizerStep(info); !s.ok()) return s;
    ++pos_.step;
    ++pos_.batch_in_epoch;

    window_.loss_sum += loss;
    window_.steps += 1;
    window_.examples += batch.y.size(0);
    if (out->logits.defined()) {
      window_.correct += out->logits.detach().argmax(1).eq(batch.y).sum().item<int64_t>();
      window_.counted_examples += batch.y.size(0);
    }
    for (const auto& [k, v] : out->scalars) window_.method_sums[k] += v;

    if (every > 0 && pos_.step % every == 0) return EmitMetrics(info);
    return absl::OkStatus();
  }

  absl::Status EmitMetrics(const StepInfo& info) {
    const double secs = window_.TrainingSeconds();
    std::map<std::string, double> v;
    v["loss"] = window_.loss_sum / double(window_.steps);
    v["lr"] = lr_;
    if (window_.counted_examples > 0) v["train_acc"] = double(window_.correct) / double(window_.counted_examples);
    if (secs > 0) {
      v["examples_per_s"] = double(window_.examples) / secs;
      v["step_time_ms"] = 1000.0 * secs / double(window_.steps);
    }
    for (const auto& [k, sum] : window_.method_sums) v[k] = sum / double(window_.steps);
    method_->AddStepScalars(info, &v);
    if (auto* m = dynamic_cast<OptimizerMetrics*>(optimizer_.get())) m->AppendMetricScalars(&v);
    Progress(absl::StrFormat("step %d/%d epoch %.2f loss %.4f acc %.3f lr %.3g %.0f ex/s %.2f ms/step",
                             info.step, ctx_.total_steps, info.epoch_fraction(), v["loss"],
                             v.count("train_acc") ? v["train_acc"] : 0.0, lr_,
                             v.count("examples_per_s") ? v["examples_per_s"] : 0.0,
                             v.count("step_time_ms") ? v["step_time_ms"] : 0.0));
    window_.Reset();
    return ev_->EmitScalars(info.step, info.epoch_fraction(), v);
  }

  absl::Status Evaluate(DataLoader& loader, int stage, int64_t spe) {
    const Clock::time_point eval_start = Clock::now();
    last_eval_step_ = pos_.step;
    if (loader.num_examples() == 0) return absl::OkStatus();
    model_->eval();
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> all_logits, all_labels;
    loader.StartEpoch(0, 0);
    while (auto batch = loader.Next()) {
      at::Tensor logits;
      {
        AutocastScope autocast(precision_);
        logits = method_->EvalLogits(batch->x.to(device_));
      }
      logits = logits.to(at::kFloat).cpu();
      all_logits.push_back(logits);
      all_labels.push_back(batch->y);
    }
    at::Tensor logits = at::cat(all_logits);
    at::Tensor labels = at::cat(all_labels);
    const int64_t n = labels.size(0);
    std::map<std::string, double> v;
    v["eval_loss"] = at::cross_entropy_loss(logits, labels).item<double>();
    v["eval_acc"] = logits.argmax(1).eq(labels).sum().item<double>() / double(n);
    const int64_t k = std::min<int64_t>(5, logits.size(1));
    at::Tensor topk = std::get<1>(logits.topk(k, 1));
    v["eval_top5"] = topk.eq(labels.unsqueeze(1)).any(1).sum().item<double>() / double(n);
    StepInfo info = Info(stage, spe);
    method_->AddEvalScalars(info, logits, labels, &v);
    model_->train();
    // Keep evaluation out of the training throughput (ex/s, step_time_ms).
    window_.paused_s += std::chrono::duration<double>(Clock::now() - eval_start).count();
    Progress(absl::StrFormat("eval at step %d: loss %.4f acc %.4f top5 %.4f (%d examples)", pos_.step,
                             v["eval_loss"], v["eval_acc"], v["eval_top5"], n));
    // Reported at the epoch boundary: epoch = completed epochs.
    const double epoch = pos_.batch_in_epoch >= spe ? double(pos_.epoch + 1) : info.epoch_fraction();
    return ev_->EmitScalars(pos_.step, epoch, v);
  }

  absl::Status Checkpoint() {
    const std::string dir = (fs::path(o_.out_dir) / "checkpoints").string();
    const Clock::time_point save_start = Clock::now();
    auto saved = SaveCheckpoint(dir, pos_, spec_, *model_, optimizer_.get(), method_.get());
    // Like evaluation, writing a checkpoint is not training time.
    window_.paused_s += std::chrono::duration<double>(Clock::now() - save_start).count();
    if (!saved.ok()) return saved.status();
    last_checkpoint_step_ = pos_.step;
    const std::string rel = fs::relative(saved->path, o_.out_dir).string();
    Progress(absl::StrFormat("checkpoint %s (%d bytes)", rel, saved->bytes));
    return ev_->EmitCheckpoint(pos_.step, rel, saved->bytes, saved->sha256);
  }

  Failure Terminate() {
    Progress(absl::StrFormat("SIGTERM: checkpointing at step %d and stopping", pos_.step));
    absl::Status s = Checkpoint();
    if (!s.ok()) return Failure{s, 1};
    return Failure{absl::CancelledError("terminated"), 143};
  }

  std::optional<Failure> LoadInit() {
    std::string path = o_.init_path.empty() ? spec_.init().checkpoint_path() : o_.init_path;
    if (path.empty()) {
      if (spec_.init().from_run() > 0) {
        return Failure{absl::InvalidArgumentError(absl::StrCat(
                           "spec.init.from_run: run ", spec_.init().from_run(),
                           " must be fetched by the worker and passed as --init CKPT")), 2};
      }
      return std::nullopt;
    }
    auto r = CheckpointReader::Open(path);
    if (!r.ok()) return Failure{r.status(), r.status().code() == absl::StatusCode::kNotFound ? 2 : 1};
    std::vector<std::string> missing;
    PENDULUM_TRY((*r)->LoadModel(model_.get(), /*strict=*/false, &missing), 1);
    Log("info", absl::StrCat("initialised weights from ", path,
                             missing.empty() ? "" : absl::StrCat(" (", missing.size(), " tensors not in it kept their init)")));
    if (spec_.init().resume_state()) init_optimizer_ = std::move(*r);
    return std::nullopt;
  }

  std::optional<Failure> LoadTeacher(const ModelInputs& inputs) {
    std::string path = o_.teacher_path.empty() ? spec_.distill().teacher_checkpoint() : o_.teacher_path;
    if (path.empty()) {
      if (spec_.distill().teacher_run() > 0) {
        return Failure{absl::InvalidArgumentError(absl::StrCat(
                           "spec.distill.teacher_run: run ", spec_.distill().teacher_run(),
                           " must be fetched by the worker and passed as --teacher CKPT")), 2};
      }
      return std::nullopt;
    }
    auto r = CheckpointReader::Open(path);
    if (!r.ok()) return Failure{r.status(), r.status().code() == absl::StatusCode::kNotFound ? 2 : 1};
    // The teacher is rebuilt from its own run's model spec (the architecture
    // may differ from the student's), then frozen.
    auto teacher = MakeModel((*r)->spec().model(), inputs);
    if (!teacher.ok()) return Failure{teacher.status(), 1};
    PENDULUM_TRY((*r)->LoadModel(teacher->get(), /*strict=*/true), 1);
    teacher_ = *teacher;
    teacher_->eval();
    for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
    teacher_->to(device_);
    Log("info", absl::StrCat("teacher loaded from ", path, " (", (*r)->spec().model().arch(), ")"));
    return std::nullopt;
  }

  void SetThreads() {
    int n = o_.threads > 0 ? o_.threads : int(spec_.resources().cpus());
    if (n <= 0) n = 2;
    at::set_num_threads(n);
    SetBlasThreads(n);  // OpenBLAS's own pool is not sized by LibTorch
    try {
      at::set_num_interop_threads(1);  // the loop issues one op at a time
    } catch (const c10::Error&) {
      // Already set (a second Trainer in one process, e.g. tests): keep it.
    }
  }

  void SelectDevice() {
    const bool wants_gpu = spec_.resources().gpus() > 0 || spec_.resources().gpu_fraction() > 0;
    if (wants_gpu && torch::cuda::is_available()) {
      device_ = torch::Device(torch::kCUDA, 0);  // CUDA_VISIBLE_DEVICES pins the GPU
    } else {
      device_ = torch::kCPU;
      if (wants_gpu) Log("warning", "spec asks for a GPU but CUDA is not available; training on CPU");
    }
  }

  void Progress(const std::string& text) {
    if (o_.progress) std::fprintf(stderr, "[pendulum-train] %s\n", text.c_str());
  }

  // Before Started, log lines wait (Started must be the first event).
  void Log(const std::string& level, const std::string& text) {
    Progress(text);
    if (!started_) {
      pending_logs_.emplace_back(level, text);
      return;
    }
    ev_->EmitLog(level, text).IgnoreError();  // a log line is not worth failing the run
  }

  void FlushPendingLogs() {
    for (const auto& [level, text] : pending_logs_) ev_->EmitLog(level, text).IgnoreError();  // as above
    pending_logs_.clear();
  }

  const TrainerOptions& o_;
  v1::RunSpec spec_;
  EventWriter* ev_;
  torch::Device device_ = torch::kCPU;
  Precision precision_ = Precision::kFloat32;
  DataBundle data_;
  ModelPtr model_;
  ModelPtr teacher_;
  TrainContext ctx_;
  std::unique_ptr<TrainingMethod> method_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<CheckpointReader> init_optimizer_;
  TrainPosition pos_;
  Window window_;
  double lr_ = 0;
  int64_t last_checkpoint_step_ = -1;
  int64_t last_eval_step_ = -1;
  int64_t last_spe_ = 0;
  bool started_ = false;
  std::vector<std::pair<std::string, std::string>> pending_logs_;
};

Trainer::Trainer(TrainerOptions options, EventWriter* events)
    : options_(std::move(options)), events_(events) {}

Trainer::~Trainer() = default;

TrainResult Trainer::Run() {
  Impl impl(options_, events_);
  return impl.Run();
}

}  // namespace pendulum::train
