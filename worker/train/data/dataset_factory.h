#pragma once
// LoadData: reads the train and eval datasets a DataSpec names.
//   fashion_mnist  IDX files (gz or raw) in data.path, default
//                  /usr/share/datasets/fashion-mnist (Debian dataset-fashion-mnist)
//   cifar10        data_batch_{1..5}.bin + test_batch.bin in data.path (or its
//                  cifar-10-batches-bin/ subfolder)
//   cifar100       train.bin + test.bin in data.path (or cifar-100-binary/)
//   synthetic      Gaussian class blobs from data.synthetic, deterministic in seed
//   imagenet_folder  not supported yet (UNIMPLEMENTED)
// data.train_subset / eval_subset keep the first N examples. Errors: NOT_FOUND
// or DATA_LOSS naming the file, INVALID_ARGUMENT naming a spec field. Pure.

#include <cstdint>

#include "absl/status/statusor.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/data/dataset.h"

namespace pendulum::train {

struct DataBundle {
  Dataset train;
  Dataset eval;
};

inline constexpr char kDefaultFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

absl::StatusOr<DataBundle> LoadData(const v1::DataSpec& spec, uint64_t seed);

// Fashion-MNIST from `dir` (files train-images-idx3-ubyte[.gz], ...).
absl::StatusOr<DataBundle> LoadFashionMnist(const std::string& dir);

// Synthetic blobs: class means ~ N(0, 1) per coordinate, examples = mean +
// noise * N(0, 1), labels uniform; train and eval share the means.
absl::StatusOr<DataBundle> MakeSyntheticData(const v1::SyntheticDataSpec& spec, uint64_t seed);

}  // namespace pendulum::train
