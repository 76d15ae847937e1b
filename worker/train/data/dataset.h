#pragma once
// Dataset and Batch: the in-memory form of every dataset pendulum-train reads
// (Fashion-MNIST, CIFAR-10/100, synthetic). Images are kept compact (uint8
// [N, C, H, W] for image files, float32 [N, ...shape] for synthetic data) and
// turned into normalised float batches by the loader. Immutable after loading;
// safe to read from several loader threads.

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace pendulum::train {

struct Dataset {
  std::string name;        // "fashion_mnist/train", "synthetic/eval", ...
  at::Tensor images;       // uint8 [N, C, H, W] or float32 [N, ...example_shape]
  at::Tensor labels;       // int64 [N], values in [0, num_classes)
  int64_t num_classes = 0;
  // Shape of one example as the model sees it, e.g. {1, 28, 28} or {784}.
  std::vector<int64_t> example_shape;
  // Per-channel normalisation applied by the loader to uint8 images
  // (x/255 - mean) / std. Empty for float data (used as is).
  std::vector<float> mean;
  std::vector<float> std;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  bool is_image() const { return images.defined() && images.scalar_type() == at::kByte; }
};

// One mini-batch as the training loop and TrainingMethods see it.
struct Batch {
  at::Tensor x;        // float32 [B, ...example_shape], on the training device
  at::Tensor y;        // int64 [B]
  at::Tensor indices;  // int64 [B]: example indices into the Dataset (CPU)
};

}  // namespace pendulum::train
