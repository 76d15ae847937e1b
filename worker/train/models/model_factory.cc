#include "worker/train/models/model_factory.h"

#include <c10/util/Exception.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/train/models/model_registry.h"

namespace pendulum::train {

absl::StatusOr<ModelPtr> MakeModel(const v1::ModelSpec& spec, const ModelInputs& inputs) {
  const ModelBuilder* builder = ModelRegistry::Global().Find(spec.arch());
  if (builder == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.model.arch: '", spec.arch(), "' is not built in this version (built: ",
                     absl::StrJoin(ModelRegistry::Global().Names(), ", "), ")"));
  }
  ModelInputs resolved = inputs;
  if (spec.num_classes() > 0) resolved.num_classes = spec.num_classes();
  try {
    return (*builder)(spec, resolved);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("building model '", spec.arch(),
                                                   "': ", e.what_without_backtrace()));
  }
}

}  // namespace pendulum::train
