#pragma once
// A class-incremental scenario: the class order (numpy permutation with the
// seed, 1993 by default, as PyCIL and the official WA code) and the number of
// classes per stage. Model output k is the k-th class of the order, so
// stage t owns outputs [known(t), total(t)). Immutable after Make(); any thread.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "pendulum/v1/method_incremental.pb.h"

namespace pendulum::train::incremental {

class Scenario {
 public:
  // base_classes == 0 means B0 (the first stage has classes_per_stage
  // classes); a last stage smaller than classes_per_stage takes the rest.
  // INVALID_ARGUMENT naming the field for impossible values.
  static absl::StatusOr<Scenario> Make(int64_t num_classes, int64_t base_classes, int64_t classes_per_stage,
                                       uint64_t seed);
  static absl::StatusOr<Scenario> FromSpec(const pendulum::v1::IncrementalMethod& spec, int64_t num_classes);

  int64_t num_classes() const { return static_cast<int64_t>(order_.size()); }
  int64_t num_stages() const { return static_cast<int64_t>(stage_sizes_.size()); }
  const std::vector<int64_t>& class_order() const { return order_; }
  const std::vector<int64_t>& stage_sizes() const { return stage_sizes_; }
  // Classes known before stage t (C_o) and after it (C).
  int64_t KnownBefore(int64_t stage) const;
  int64_t TotalAfter(int64_t stage) const { return KnownBefore(stage) + stage_sizes_.at(stage); }
  // Dataset label -> model output index (position in the order).
  int64_t OutputOf(int64_t label) const { return label_to_output_.at(static_cast<size_t>(label)); }
  // Model output index -> dataset label.
  int64_t LabelOf(int64_t output) const { return order_.at(static_cast<size_t>(output)); }

 private:
  std::vector<int64_t> order_;
  std::vector<int64_t> label_to_output_;
  std::vector<int64_t> stage_sizes_;
};

}  // namespace pendulum::train::incremental
