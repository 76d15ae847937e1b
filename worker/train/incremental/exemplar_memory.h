#pragma once
// The fixed-budget exemplar memory of class-incremental training (methods.md
// §2.1): per class, indices into the training set in herding order. After
// each stage m = budget / #seen classes; old classes keep their herding
// prefix (§2.5 Trap 6). Saved in checkpoints so a resumed run keeps it.
// Not thread-safe; owned by the training method.

#include <cstdint>
#include <map>
#include <vector>

#include <ATen/Tensor.h>

#include "absl/status/status.h"

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace pendulum::train::incremental {

class ExemplarMemory {
 public:
  explicit ExemplarMemory(int64_t budget = 2000) : budget_(budget) {}

  int64_t budget() const { return budget_; }
  // Exemplars per class once `seen_classes` classes are known (budget / seen).
  int64_t PerClass(int64_t seen_classes) const {
    return seen_classes <= 0 ? 0 : budget_ / seen_classes;
  }
  // Keeps the first m indices of every stored class.
  void ShrinkTo(int64_t m);
  // Stores a class's selection (herding order), replacing any previous one.
  void Set(int64_t cls, std::vector<int64_t> indices) { classes_[cls] = std::move(indices); }

  // class (model output index) -> dataset indices, in herding order.
  const std::map<int64_t, std::vector<int64_t>>& classes() const { return classes_; }
  // All (dataset index, class) pairs, classes ascending.
  std::vector<std::pair<int64_t, int64_t>> AllExemplars() const;
  int64_t size() const;
  bool empty() const { return classes_.empty(); }

  void Save(torch::serialize::OutputArchive& archive) const;
  // DATA_LOSS when the archive is malformed.
  absl::Status Load(torch::serialize::InputArchive& archive);

 private:
  int64_t budget_;
  std::map<int64_t, std::vector<int64_t>> classes_;
};

}  // namespace pendulum::train::incremental
