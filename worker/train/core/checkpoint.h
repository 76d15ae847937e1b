#pragma once
// Checkpoint files (DIR/checkpoints/step-<S>.ckpt): a torch archive holding
// the model's parameters and buffers (by dotted name), optimizer state, the
// method's state, torch's CPU RNG state, the data position (stage, epoch,
// batch within the epoch), the global step and the RunSpec that produced it
// (so --init/--teacher can rebuild the architecture). Written atomically:
// temp file, fsync, rename, fsync of the directory. Training thread only.

#include <cstdint>
#include <memory>
#include <string>

#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/core/training_method.h"
#include "worker/train/models/model.h"

namespace pendulum::train {

// Where the loop stands: the next batch to train is `batch_in_epoch` of
// `epoch` (global epoch counter) in `stage`; `step` optimizer steps are done.
struct TrainPosition {
  int64_t step = 0;
  int64_t stage = 0;
  int64_t epoch = 0;            // global epoch (seeds the data order)
  int64_t epoch_in_stage = 0;
  int64_t batch_in_epoch = 0;
  int64_t stage_start_step = 0;  // step at which the stage began (LR schedule origin)
};

struct SavedCheckpoint {
  std::string path;
  int64_t bytes = 0;
  std::string sha256;  // lowercase hex
};

// Writes the checkpoint for `pos` to `dir`/step-<S>.ckpt. optimizer/method may be null.
absl::StatusOr<SavedCheckpoint> SaveCheckpoint(const std::string& dir, const TrainPosition& pos,
                                               const v1::RunSpec& spec, const Model& model,
                                               const torch::optim::Optimizer* optimizer,
                                               const TrainingMethod* method);

// A checkpoint opened for reading. Errors: NOT_FOUND (missing file),
// DATA_LOSS (not a checkpoint / corrupt), both naming the path.
class CheckpointReader {
 public:
  static absl::StatusOr<std::unique_ptr<CheckpointReader>> Open(const std::string& path);

  const TrainPosition& position() const { return position_; }
  const v1::RunSpec& spec() const { return spec_; }

  // Copies the saved tensors into model's parameters/buffers of the same name.
  // strict: every model tensor must be present (resume, teacher). Not strict
  // (--init): tensors missing from the checkpoint keep their values and are
  // listed in *missing. A shape mismatch is always an error.
  absl::Status LoadModel(Model* model, bool strict, std::vector<std::string>* missing = nullptr);
  absl::Status LoadOptimizer(torch::optim::Optimizer* optimizer);
  absl::Status LoadMethod(TrainingMethod* method);
  absl::Status RestoreRng();

 private:
  std::string path_;
  torch::serialize::InputArchive archive_;
  TrainPosition position_;
  v1::RunSpec spec_;
};

}  // namespace pendulum::train
