#pragma once
// DataLoader: turns a Dataset (or a subset of its indices) into mini-batches,
// deterministically: the order of epoch e is a permutation drawn from
// (seed, e) and each example's augmentation from (seed, e, example index), so
// the batches do not depend on the number of loader threads, and a run resumed
// at (epoch, batch) sees exactly the batches an uninterrupted run would.
//
// Transforms (uint8 image data): optional augmentation (random crop with zero
// padding — 4 px for images >= 32 px, 2 px below — and horizontal flip), then
// x/255 normalised per channel with the dataset's mean/std. Float data
// (synthetic) is passed through unchanged.
//
// Threads: with threads > 0, worker threads build up to `prefetch` batches
// ahead of the consumer. Next() is called from one thread (the training loop).

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "worker/train/data/dataset.h"

namespace pendulum::train {

struct DataLoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  bool augment = false;
  // Drop the last incomplete batch (training) when there is at least one full batch.
  bool drop_last = true;
  uint64_t seed = 0;
  int threads = 0;   // 0 = build batches on the calling thread
  int prefetch = 2;  // batches built ahead per epoch when threads > 0
};

class DataLoader {
 public:
  // `dataset` must outlive the loader. `indices` selects examples (empty = all).
  DataLoader(const Dataset* dataset, std::vector<int64_t> indices, DataLoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_examples() const { return int64_t(indices_.size()); }
  int64_t batches_per_epoch() const;

  // Starts epoch `epoch` at batch `first_batch` (resume). Stops any previous epoch.
  void StartEpoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the current epoch (CPU tensors), or nullopt at its end.
  std::optional<Batch> Next();

  // Builds batch `b` of `epoch` directly (no threads): the reference the
  // threaded path must equal. Public for tests.
  Batch BuildBatch(int64_t epoch, int64_t b) const;

 private:
  std::vector<int64_t> EpochOrder(int64_t epoch) const;
  void StopWorkers();
  void WorkerLoop();

  const Dataset* dataset_;
  std::vector<int64_t> indices_;
  DataLoaderOptions options_;

  // Current epoch (written only by the consumer while no workers run).
  int64_t epoch_ = 0;
  int64_t next_batch_ = 0;  // consumer position
  std::vector<int64_t> order_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Batch> ready_;  // guarded by mu_
  int64_t claim_ = 0;               // next batch a worker builds; guarded by mu_
  int64_t consumed_ = 0;            // batches handed out; guarded by mu_
  bool stop_ = false;               // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace pendulum::train
