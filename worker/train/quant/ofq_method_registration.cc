// Registers OfqTrainingMethod as method "ofq" with a checkpoint loader built on
// core's CheckpointReader. Kept apart from ofq_method.cc so that tests can use
// the method without linking train_core (this object is only pulled into
// pendulum-train, which links train_core).

#include "worker/train/core/checkpoint.h"
#include "worker/train/core/method_registry.h"
#include "worker/train/quant/ofq_method.h"

namespace pendulum::train::quant {
namespace {

absl::Status LoadCheckpointNonStrict(const std::string& path, Model* model) {
  auto reader = CheckpointReader::Open(path);
  if (!reader.ok()) return reader.status();
  std::vector<std::string> missing;
  return (*reader)->LoadModel(model, /*strict=*/false, &missing);
}

}  // namespace
}  // namespace pendulum::train::quant

PENDULUM_REGISTER_METHOD(ofq, [](const pendulum::train::TrainContext& ctx)
                                  -> absl::StatusOr<std::unique_ptr<pendulum::train::TrainingMethod>> {
  return std::make_unique<pendulum::train::quant::OfqTrainingMethod>(
      ctx.spec->method().ofq(), &pendulum::train::quant::LoadCheckpointNonStrict);
});
