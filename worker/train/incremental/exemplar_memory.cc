#include "worker/train/incremental/exemplar_memory.h"

#include <algorithm>
#include <string>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "absl/strings/str_cat.h"

namespace pendulum::train::incremental {

void ExemplarMemory::ShrinkTo(int64_t m) {
  for (auto& [cls, indices] : classes_) {
    if (static_cast<int64_t>(indices.size()) > m) indices.resize(static_cast<size_t>(std::max<int64_t>(m, 0)));
  }
}

std::vector<std::pair<int64_t, int64_t>> ExemplarMemory::AllExemplars() const {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const auto& [cls, indices] : classes_) {
    for (int64_t i : indices) out.emplace_back(i, cls);
  }
  return out;
}

int64_t ExemplarMemory::size() const {
  int64_t n = 0;
  for (const auto& [cls, indices] : classes_) n += static_cast<int64_t>(indices.size());
  return n;
}

// Layout: "budget" [1], "classes" [K], "offsets" [K+1], "indices" [total] (int64).
void ExemplarMemory::Save(torch::serialize::OutputArchive& archive) const {
  std::vector<int64_t> classes, offsets{0}, indices;
  for (const auto& [cls, idx] : classes_) {
    classes.push_back(cls);
    indices.insert(indices.end(), idx.begin(), idx.end());
    offsets.push_back(static_cast<int64_t>(indices.size()));
  }
  auto as_tensor = [](const std::vector<int64_t>& v) {
    return at::tensor(v, at::TensorOptions().dtype(at::kLong));
  };
  archive.write("budget", as_tensor({budget_}));
  archive.write("classes", as_tensor(classes));
  archive.write("offsets", as_tensor(offsets));
  archive.write("indices", as_tensor(indices));
}

absl::Status ExemplarMemory::Load(torch::serialize::InputArchive& archive) {
  try {
    at::Tensor budget, classes, offsets, indices;
    archive.read("budget", budget);
    archive.read("classes", classes);
    archive.read("offsets", offsets);
    archive.read("indices", indices);
    if (budget.numel() != 1 || offsets.numel() != classes.numel() + 1 ||
        (offsets.numel() > 0 && offsets[-1].item<int64_t>() != indices.numel())) {
      return absl::DataLossError("exemplar memory archive: inconsistent sizes");
    }
    std::map<int64_t, std::vector<int64_t>> loaded;
    const int64_t* off = offsets.data_ptr<int64_t>();
    const int64_t* idx = indices.data_ptr<int64_t>();
    for (int64_t k = 0; k < classes.numel(); ++k) {
      if (off[k] > off[k + 1]) return absl::DataLossError("exemplar memory archive: offsets decrease");
      loaded[classes[k].item<int64_t>()] = std::vector<int64_t>(idx + off[k], idx + off[k + 1]);
    }
    budget_ = budget.item<int64_t>();
    classes_ = std::move(loaded);
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("exemplar memory archive: ", e.what_without_backtrace()));
  }
}

}  // namespace pendulum::train::incremental
