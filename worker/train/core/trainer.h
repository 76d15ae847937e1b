#pragma once
// Trainer: runs one RunSpec to completion — data, model, method, optimizer,
// LR schedule, evaluation, events, checkpoints, resume and signals — and
// reports how it ended. The generic loop; everything method-specific goes
// through TrainingMethod (training_method.h). One Trainer per process (it
// sets torch's global seed and thread count); training thread only.
//
// Scalars it emits (names are the metric names stored by the server):
//   every logging.metrics_every_steps (default 10), averaged over the window:
//     loss, train_acc, lr, examples_per_s, step_time_ms, + method scalars
//     (LossOutput.scalars, AddStepScalars; e.g. ce/kd with a teacher)
//   after each evaluation (every schedule.eval_every_epochs, and at the end):
//     eval_loss, eval_acc (top-1), eval_top5, + AddEvalScalars
// Checkpoints: every checkpoint_every_steps, at each epoch end, at the end,
// on SIGUSR1 and on SIGTERM; all files are kept (the daemon uploads them).

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/core/event_writer.h"

namespace pendulum::train {

struct TrainerOptions {
  v1::RunSpec spec;
  std::string out_dir;       // run attempt directory; checkpoints under out_dir/checkpoints
  std::string resume_path;   // --resume: continue this checkpoint exactly
  std::string init_path;     // --init / spec.init.checkpoint_path: weights only
  std::string teacher_path;  // --teacher / spec.distill.teacher_checkpoint
  int threads = 0;           // torch intra-op threads; 0 = spec.resources.cpus or 2
  bool progress = true;      // human progress lines on stderr
  std::string precision = "auto";  // --precision: auto (bf16 autocast on CUDA), fp32, bf16
};

// How a run ended; exit_code follows docs/trainer_protocol.md.
struct TrainResult {
  absl::Status status;     // OK on success
  int exit_code = 0;       // 0, 1 (training failed), 2 (spec), 3 (data), 143 (SIGTERM)
  int64_t final_step = 0;
};

class Trainer {
 public:
  // `events` must outlive the trainer.
  Trainer(TrainerOptions options, EventWriter* events);
  ~Trainer();

  // Trains; emits Started first and Finished last (when the sink still works).
  TrainResult Run();

 private:
  class Impl;
  TrainerOptions options_;
  EventWriter* events_;
};

}  // namespace pendulum::train
