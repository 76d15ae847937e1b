#pragma once
// Reads the CIFAR-10/100 "binary version" files. CIFAR-10: records of
// 1 label byte + 3072 pixel bytes (3x32x32, channel-major) in
// data_batch_{1..5}.bin / test_batch.bin. CIFAR-100: 1 coarse + 1 fine label
// byte + 3072 bytes in train.bin / test.bin (the fine label is used).
// Errors name the path (NOT_FOUND missing, DATA_LOSS corrupt). Pure.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/train/data/dataset.h"

namespace pendulum::train {

// Concatenates the records of `files` into one uint8 [N, 3, 32, 32] dataset.
// label_bytes: 1 (CIFAR-10) or 2 (CIFAR-100; the second byte is the label).
absl::StatusOr<Dataset> ReadCifarFiles(const std::vector<std::string>& files, int label_bytes,
                                       int num_classes, const std::string& name);

}  // namespace pendulum::train
