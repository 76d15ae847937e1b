#pragma once
// TrainingMethod: the plug-in interface between the generic training loop
// (core/trainer.h) and a training method (plain supervised, OFQ, incremental
// learning, compander, TSCNC, interaction basis, ...). The loop owns data,
// model, optimizer, schedule, checkpoints and events; a method customises the
// fixed points below. Every hook has a default that gives plain supervised
// training, so a method overrides only what it changes.
//
// Order of calls for one run:
//   Setup(ctx, &model)                      once, before the optimizer is built
//   [LoadState(archive)]                    on --resume, after Setup
//   for stage in 0 .. NumStages()-1 (from the checkpoint's stage on resume):
//     (on resume: model weights, optimizer state and RNG are restored after
//      BeginStage of the resumed stage, so shapes match)
//     BeginStage(stage, &plan)              picks data subsets, may change the model
//     (optimizer (re)built if plan.rebuild_optimizer or first stage)
//     for each epoch of the stage:
//       for each batch:
//         ComputeLoss(batch, step)          forward + loss (default: CE, label smoothing, KD)
//         (loop: loss.backward(); NaN check)
//         AfterBackward(step)               e.g. CGA gradient masking
//         (loop: grad clipping; optimizer.step())
//         AfterOptimizerStep(step)          e.g. write back frozen weights, oscillation tracking
//         [AddStepScalars(step, &values)]   on metric steps, values join the "Scalars" event
//         [SaveState(archive)]              on checkpoints
//       [EvalLogits(x) per eval batch; AddEvalScalars(...)]   on eval epochs
//       OnEpochEnd(step)
//     EndStage(stage, step)
//   OnTrainEnd(step)
//
// Methods emit their own events (OscillationStats, WeightSnapshot, extra
// Scalars) through ctx.events from any hook. Hooks return absl::Status; a
// non-OK status fails the run (exit 1) with that message. Hooks may throw
// c10::Error (torch checks); the loop catches it at the step edge. All hooks
// run on the training thread.
//
// Registering a method: implement a subclass in your folder (quant/, optim/,
// incremental/, reg/, analysis/) and register a factory keyed by the
// MethodSpec oneof field name (see method_registry.h):
//   PENDULUM_REGISTER_METHOD(ofq, [](const TrainContext& ctx)
//       -> absl::StatusOr<std::unique_ptr<TrainingMethod>> { ... });

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)
#include <torch/nn/module.h>
#include <torch/serialize/archive.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/core/event_sink.h"
#include "worker/train/data/dataset.h"
#include "worker/train/models/model.h"

namespace pendulum::train {

// What the loop gives a method. Pointers stay valid for the whole run.
struct TrainContext {
  const v1::RunSpec* spec = nullptr;
  torch::Device device = torch::kCPU;
  EventSink* events = nullptr;
  std::filesystem::path out_dir;        // the run attempt's directory
  const Dataset* train_data = nullptr;  // full training set (before stage subsets)
  const Dataset* eval_data = nullptr;   // full evaluation set
  ModelInputs inputs;                   // classes and example shape
  // Full-precision teacher loaded from --teacher / spec.distill (eval mode,
  // frozen), or nullptr. The default ComputeLoss adds soft-target KD with it.
  ModelPtr teacher;
  // Steps the whole run will take (all stages; after max_steps), 0 if unknown.
  int64_t total_steps = 0;
};

// Where the loop is. step counts optimizer steps done so far (0 before the
// first); inside ComputeLoss/AfterBackward/AfterOptimizerStep it is the step
// being taken (1-based), matching the "step" of the events for that step.
struct StepInfo {
  int64_t step = 0;
  int stage = 0;
  int64_t epoch = 0;               // epoch within the run (0-based)
  int64_t batch_in_epoch = 0;      // 0-based
  int64_t steps_per_epoch = 0;
  double lr = 0;                   // current learning rate (group 0)
  double epoch_fraction() const {  // the value reported as Scalars.epoch
    return steps_per_epoch > 0 ? epoch + double(batch_in_epoch + 1) / steps_per_epoch : epoch;
  }
};

// Result of a forward/loss computation for one batch.
struct LossOutput {
  torch::Tensor loss;    // scalar, requires grad; the loop calls backward()
  torch::Tensor logits;  // [B, classes] for train accuracy (may be undefined)
  // Extra scalars averaged over the metrics window and reported with the
  // step's metrics (e.g. "ce", "kd"). Values must be plain doubles.
  std::map<std::string, double> scalars;
};

// What a stage trains on (incremental learning has several stages; others one).
struct StagePlan {
  // Example indices into ctx.train_data / ctx.eval_data; empty = all
  // (after spec.data.train_subset / eval_subset, which the loop applies first).
  std::vector<int64_t> train_indices;
  std::vector<int64_t> eval_indices;
  // Epochs for this stage; 0 = spec.schedule.epochs.
  int64_t epochs = 0;
  // Build a fresh optimizer for this stage (needed when parameters changed).
  bool rebuild_optimizer = false;
  std::string label;  // e.g. "stage 2: classes 4-5", for logs
  // Set by the loop before BeginStage: true when the run resumes inside this
  // stage from a checkpoint (after LoadState). BeginStage must then bring the
  // model to this stage's shape; the loop loads the saved weights afterwards.
  bool resuming = false;
};

class TrainingMethod {
 public:
  virtual ~TrainingMethod() = default;

  // Short name used in logs and as the prefix of method scalars ("plain", "ofq").
  virtual std::string name() const = 0;

  // Once, after the model is built (and --init weights loaded) and before the
  // optimizer exists. May replace *model (e.g. swap layers for quantized ones);
  // the loop moves the result to ctx.device. Keep ctx; it outlives the method.
  virtual absl::Status Setup(const TrainContext& ctx, ModelPtr* model) {
    ctx_ = ctx;
    model_ = *model;
    return absl::OkStatus();
  }

  // Parameters that must not get weight decay, beyond the loop's own rule
  // (1-D tensors unless optimizer.decay_1d). E.g. quantizer scales.
  virtual bool ExcludeFromWeightDecay(const std::string& param_name, const torch::Tensor& p) const {
    return false;
  }

  // Parameters the optimizer should not see at all (frozen). Default none.
  virtual bool Frozen(const std::string& param_name, const torch::Tensor& p) const { return false; }

  // Number of stages (incremental learning: tasks). Default 1.
  virtual int NumStages() const { return 1; }

  // Optimizer steps the whole run will take, for progress and ETA, when the
  // method knows better than the trainer's one-stage estimate (stages over
  // subsets plus replayed memory); 0 = use the trainer's. Called after Setup.
  virtual int64_t PlannedTotalSteps(int64_t batch_size, int64_t default_epochs) const { return 0; }
  // Before stage `stage`; may modify *model (e.g. grow the classifier) and
  // must then set plan->rebuild_optimizer. Default: all data, one stage.
  virtual absl::Status BeginStage(int stage, ModelPtr* model, StagePlan* plan) {
    return absl::OkStatus();
  }
  virtual absl::Status EndStage(int stage, const StepInfo& info) { return absl::OkStatus(); }

  // Forward + loss for one training batch (model is in train mode). Default:
  // cross-entropy with spec.loss.label_smoothing, plus spec.distill.weight *
  // T^2 * KL(teacher || student) at temperature T when a teacher is loaded.
  virtual absl::StatusOr<LossOutput> ComputeLoss(const Batch& batch, const StepInfo& info) {
    LossOutput out;
    ModelOutput fwd = model_->Forward(batch.x);
    out.logits = fwd.logits;
    out.loss = SupervisedLoss(fwd.logits, batch, &out.scalars);
    return out;
  }

  // The default loss, reusable by methods: CE(label smoothing) + KD term.
  // With a teacher, adds "ce" and "kd" to *scalars (when not null).
  torch::Tensor SupervisedLoss(const torch::Tensor& logits, const Batch& batch,
                               std::map<std::string, double>* scalars) const {
    const double smoothing = ctx_.spec != nullptr ? ctx_.spec->loss().label_smoothing() : 0.0;
    torch::Tensor ce = at::cross_entropy_loss(logits, batch.y, /*weight=*/{},
                                              at::Reduction::Mean, /*ignore_index=*/-100, smoothing);
    if (!ctx_.teacher) return ce;  // then "loss" already is the CE; no duplicate point
    if (scalars != nullptr) (*scalars)["ce"] = ce.item<double>();
    const auto& d = ctx_.spec->distill();
    const double t = d.temperature() > 0 ? d.temperature() : 1.0;
    const double w = d.weight() > 0 ? d.weight() : 1.0;  // proto3: unset (0) means the default 1
    torch::Tensor teacher_logits;
    {
      at::NoGradGuard no_grad;
      teacher_logits = ctx_.teacher->Forward(batch.x).logits;
    }
    // Hinton et al. soft-target KD: T^2 * KL(softmax(t/T) || softmax(s/T)), batch mean.
    torch::Tensor log_p_s = at::log_softmax(logits / t, 1);
    torch::Tensor log_p_t = at::log_softmax(teacher_logits / t, 1);
    torch::Tensor kd = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean() * (t * t);
    if (scalars != nullptr) (*scalars)["kd"] = kd.item<double>();
    return ce + w * kd;
  }

  // After loss.backward(), before gradient clipping and the optimizer step.
  virtual absl::Status AfterBackward(const StepInfo& info) { return absl::OkStatus(); }
  // After optimizer.step() (gradients still present until the next zero_grad).
  virtual absl::Status AfterOptimizerStep(const StepInfo& info) { return absl::OkStatus(); }

  // On metric steps (every logging.metrics_every_steps): add method scalars to
  // the step's Scalars event (they count as points).
  virtual void AddStepScalars(const StepInfo& info, std::map<std::string, double>* values) {}

  // Evaluation logits for a batch (model in eval mode, under NoGradGuard).
  virtual torch::Tensor EvalLogits(const torch::Tensor& x) { return model_->Forward(x).logits; }
  // After an evaluation pass: add method-specific eval scalars (e.g. per-stage
  // old/new accuracy). `logits`/`labels` cover the whole eval set (CPU).
  virtual void AddEvalScalars(const StepInfo& info, const torch::Tensor& logits,
                              const torch::Tensor& labels, std::map<std::string, double>* values) {}

  virtual absl::Status OnEpochEnd(const StepInfo& info) { return absl::OkStatus(); }
  virtual absl::Status OnTrainEnd(const StepInfo& info) { return absl::OkStatus(); }

  // A short human summary of the run's results (after OnTrainEnd), e.g. an
  // analysis run's headline numbers and where its artifacts are. On success
  // the loop sends it as Finished.message, which the worker reports as the
  // run's exit reason (`pendulum show`). Default: none.
  virtual std::string ResultSummary() const { return ""; }

  // Method state for checkpoints (quantizer/tracker state that is not a
  // registered parameter or buffer of the model, stage, memory, ...). The
  // archive is the method's own namespace inside the checkpoint. Model
  // parameters/buffers are saved by the loop already.
  virtual absl::Status SaveState(torch::serialize::OutputArchive* archive) const {
    return absl::OkStatus();
  }
  virtual absl::Status LoadState(torch::serialize::InputArchive* archive) {
    return absl::OkStatus();
  }

 protected:
  // The model after Setup; methods that replace the model in Setup/BeginStage
  // must keep model_ pointing at the current one.
  ModelPtr model_;
  TrainContext ctx_;
};

// Factory for a method, given the run's context (spec, events, data).
using MethodFactory =
    std::function<absl::StatusOr<std::unique_ptr<TrainingMethod>>(const TrainContext& ctx)>;

// The default method (spec.method unset or `plain`): TrainingMethod's defaults.
class PlainMethod : public TrainingMethod {
 public:
  std::string name() const override { return "plain"; }
};

}  // namespace pendulum::train
