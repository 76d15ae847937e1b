#include "worker/train/core/method_registry.h"

#include <google/protobuf/descriptor.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pendulum::train {

absl::StatusOr<std::unique_ptr<TrainingMethod>> MakeMethod(const TrainContext& ctx) {
  const v1::MethodSpec& m = ctx.spec->method();
  if (m.kind_case() == v1::MethodSpec::KIND_NOT_SET || m.kind_case() == v1::MethodSpec::kPlain) {
    return std::unique_ptr<TrainingMethod>(new PlainMethod());
  }
  const std::string name = m.GetDescriptor()->FindFieldByNumber(m.kind_case())->name();
  const MethodFactory* factory = MethodRegistry::Global().Find(name);
  if (factory == nullptr) {
    std::vector<std::string> built = MethodRegistry::Global().Names();
    built.insert(built.begin(), "plain");
    return absl::InvalidArgumentError(absl::StrCat("spec.method.", name, ": method '", name,
                                                   "' is not built in this version (built: ",
                                                   absl::StrJoin(built, ", "), ")"));
  }
  return (*factory)(ctx);
}

}  // namespace pendulum::train
