#include "worker/train/incremental/scenario.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/train/incremental/class_order.h"

namespace pendulum::train::incremental {

absl::StatusOr<Scenario> Scenario::Make(int64_t num_classes, int64_t base_classes, int64_t classes_per_stage,
                                        uint64_t seed) {
  std::vector<std::string> errors;
  if (num_classes < 2) errors.push_back(absl::StrCat("spec.model.num_classes: got ", num_classes, ", must be >= 2"));
  if (classes_per_stage < 1 || classes_per_stage > num_classes) {
    errors.push_back(absl::StrCat("spec.method.incremental.classes_per_stage: got ", classes_per_stage,
                                  ", must be in 1..", num_classes));
  }
  if (base_classes < 0 || base_classes > num_classes) {
    errors.push_back(absl::StrCat("spec.method.incremental.base_classes: got ", base_classes, ", must be in 0..",
                                  num_classes));
  }
  if (seed > 0xffffffffULL) {
    errors.push_back(absl::StrCat("spec.method.incremental.class_order_seed: got ", seed, ", must be < 2^32"));
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));

  Scenario s;
  s.order_ = NumpyLegacyPermutation(num_classes, static_cast<uint32_t>(seed));
  s.label_to_output_.assign(static_cast<size_t>(num_classes), -1);
  for (int64_t k = 0; k < num_classes; ++k) s.label_to_output_[static_cast<size_t>(s.order_[k])] = k;
  const int64_t first = base_classes == 0 ? classes_per_stage : base_classes;
  s.stage_sizes_.push_back(first);
  for (int64_t done = first; done < num_classes; done += classes_per_stage) {
    s.stage_sizes_.push_back(std::min(classes_per_stage, num_classes - done));
  }
  return s;
}

absl::StatusOr<Scenario> Scenario::FromSpec(const pendulum::v1::IncrementalMethod& spec, int64_t num_classes) {
  return Make(num_classes, spec.base_classes(), spec.classes_per_stage(),
              spec.has_class_order_seed() ? spec.class_order_seed() : 1993);
}

int64_t Scenario::KnownBefore(int64_t stage) const {
  int64_t known = 0;
  for (int64_t t = 0; t < stage; ++t) known += stage_sizes_.at(static_cast<size_t>(t));
  return known;
}

}  // namespace pendulum::train::incremental
