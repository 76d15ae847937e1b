#include "worker/train/data/cifar_reader.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "worker/train/data/idx_reader.h"

namespace pendulum::train {

absl::StatusOr<Dataset> ReadCifarFiles(const std::vector<std::string>& files, int label_bytes,
                                       int num_classes, const std::string& name) {
  constexpr int64_t kPixels = 3 * 32 * 32;
  const int64_t record = label_bytes + kPixels;
  std::vector<std::string> contents;
  int64_t n = 0;
  for (const auto& path : files) {
    auto raw = ReadMaybeGzipFile(path);
    if (!raw.ok()) return raw.status();
    if (raw->empty() || raw->size() % record != 0) {
      return absl::DataLossError(absl::StrCat("corrupt CIFAR file ", path, ": size ", raw->size(),
                                              " is not a positive multiple of the ", record,
                                              "-byte record"));
    }
    n += raw->size() / record;
    contents.push_back(std::move(*raw));
  }
  Dataset d;
  d.name = name;
  d.num_classes = num_classes;
  d.example_shape = {3, 32, 32};
  d.images = at::empty({n, 3, 32, 32}, at::kByte);
  d.labels = at::empty({n}, at::kLong);
  uint8_t* img = d.images.data_ptr<uint8_t>();
  int64_t* lab = d.labels.data_ptr<int64_t>();
  int64_t i = 0;
  for (size_t f = 0; f < contents.size(); ++f) {
    const auto* p = reinterpret_cast<const uint8_t*>(contents[f].data());
    const int64_t count = int64_t(contents[f].size()) / record;
    for (int64_t r = 0; r < count; ++r, ++i) {
      const uint8_t* rec = p + r * record;
      const int label = rec[label_bytes - 1];
      if (label >= num_classes) {
        return absl::DataLossError(absl::StrCat("corrupt CIFAR file ", files[f], ": record ", r,
                                                " has label ", label, ", expected < ", num_classes));
      }
      lab[i] = label;
      std::memcpy(img + i * kPixels, rec + label_bytes, kPixels);
    }
  }
  return d;
}

}  // namespace pendulum::train
