#include "worker/train/data/data_loader.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace pendulum::train {
namespace {

// splitmix64: a tiny, well-mixed, platform-independent hash/RNG step.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Uniform integer in [0, n) from a 64-bit random value (Lemire's multiply).
uint64_t Below(uint64_t r, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * n) >> 64);
}

}  // namespace

DataLoader::DataLoader(const Dataset* dataset, std::vector<int64_t> indices, DataLoaderOptions options)
    : dataset_(dataset), indices_(std::move(indices)), options_(options) {
  if (indices_.empty()) {
    indices_.resize(dataset_->size());
    std::iota(indices_.begin(), indices_.end(), 0);
  }
  if (options_.batch_size < 1) options_.batch_size = 1;
}

DataLoader::~DataLoader() { StopWorkers(); }

int64_t DataLoader::batches_per_epoch() const {
  const int64_t n = num_examples(), b = options_.batch_size;
  if (options_.drop_last && n >= b) return n / b;
  return (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::EpochOrder(int64_t epoch) const {
  std::vector<int64_t> order = indices_;
  if (!options_.shuffle) return order;
  // Fisher-Yates with our own generator: std::shuffle's algorithm is not
  // specified, and the order must be identical everywhere (resume on another host).
  uint64_t state = Mix(options_.seed ^ Mix(0xE90C ^ uint64_t(epoch)));
  for (size_t i = order.size(); i > 1; --i) {
    state = Mix(state);
    std::swap(order[i - 1], order[Below(state, i)]);
  }
  return order;
}

Batch DataLoader::BuildBatch(int64_t epoch, int64_t b) const {
  std::vector<int64_t> other_epoch;
  const std::vector<int64_t>* order_ptr = &order_;
  if (epoch != epoch_ || order_.empty()) {
    other_epoch = EpochOrder(epoch);
    order_ptr = &other_epoch;
  }
  const std::vector<int64_t>& order = *order_ptr;
  {
    const int64_t n = num_examples();
    const int64_t begin = b * options_.batch_size;
    const int64_t count = std::min<int64_t>(options_.batch_size, n - begin);
    Batch batch;
    std::vector<int64_t> shape = {count};
    shape.insert(shape.end(), dataset_->example_shape.begin(), dataset_->example_shape.end());
    batch.x = at::empty(shape, at::kFloat);
    batch.y = at::empty({count}, at::kLong);
    batch.indices = at::empty({count}, at::kLong);
    float* x = batch.x.data_ptr<float>();
    int64_t* y = batch.y.data_ptr<int64_t>();
    int64_t* idx = batch.indices.data_ptr<int64_t>();
    const int64_t* labels = dataset_->labels.data_ptr<int64_t>();
    int64_t per_example = 1;
    for (int64_t d : dataset_->example_shape) per_example *= d;

    if (!dataset_->is_image()) {
      const float* src = dataset_->images.data_ptr<float>();
      for (int64_t i = 0; i < count; ++i) {
        const int64_t e = order[begin + i];
        idx[i] = e;
        y[i] = labels[e];
        std::memcpy(x + i * per_example, src + e * per_example, per_example * sizeof(float));
      }
      return batch;
    }
    const int64_t c = dataset_->images.size(1), h = dataset_->images.size(2), w = dataset_->images.size(3);
    const uint8_t* src = dataset_->images.data_ptr<uint8_t>();
    const int64_t pad = std::min(h, w) >= 32 ? 4 : 2;
    std::vector<float> scale(c), shift(c);
    for (int64_t ch = 0; ch < c; ++ch) {
      const float mean = ch < int64_t(dataset_->mean.size()) ? dataset_->mean[ch] : 0.f;
      const float sd = ch < int64_t(dataset_->std.size()) ? dataset_->std[ch] : 1.f;
      scale[ch] = 1.f / (255.f * sd);
      shift[ch] = -mean / sd;
    }
    for (int64_t i = 0; i < count; ++i) {
      const int64_t e = order[begin + i];
      idx[i] = e;
      y[i] = labels[e];
      int64_t dy = 0, dx = 0;
      bool flip = false;
      if (options_.augment) {
        uint64_t r = Mix(options_.seed ^ Mix(uint64_t(epoch) * 0x100000001B3ULL ^ Mix(uint64_t(e))));
        dy = int64_t(Below(r, 2 * pad + 1)) - pad;
        r = Mix(r);
        dx = int64_t(Below(r, 2 * pad + 1)) - pad;
        r = Mix(r);
        flip = (r >> 63) != 0;
      }
      const uint8_t* img = src + e * c * h * w;
      float* out = x + i * c * h * w;
      for (int64_t ch = 0; ch < c; ++ch) {
        for (int64_t row = 0; row < h; ++row) {
          const int64_t sr = row + dy;
          for (int64_t col = 0; col < w; ++col) {
            const int64_t oc = flip ? w - 1 - col : col;
            const int64_t sc = oc + dx;
            // Zero padding happens before normalisation, as torchvision's
            // RandomCrop(padding) on the PIL image does.
            const float v = (sr >= 0 && sr < h && sc >= 0 && sc < w)
                                ? float(img[(ch * h + sr) * w + sc]) : 0.f;
            out[(ch * h + row) * w + col] = v * scale[ch] + shift[ch];
          }
        }
      }
    }
    return batch;
  }
}

void DataLoader::StopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  ready_.clear();
  stop_ = false;
}

void DataLoader::StartEpoch(int64_t epoch, int64_t first_batch) {
  StopWorkers();
  epoch_ = epoch;
  order_ = EpochOrder(epoch);
  next_batch_ = first_batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    claim_ = first_batch;
    consumed_ = first_batch;
  }
  for (int i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

void DataLoader::WorkerLoop() {
  const int64_t total = batches_per_epoch();
  const int64_t ahead = std::max(1, options_.prefetch);
  while (true) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || claim_ >= total || claim_ < consumed_ + ahead; });
      if (stop_ || claim_ >= total) return;
      b = claim_++;
    }
    Batch batch = BuildBatch(epoch_, b);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace(b, std::move(batch));
    }
    cv_.notify_all();
  }
}

std::optional<Batch> DataLoader::Next() {
  if (next_batch_ >= batches_per_epoch()) return std::nullopt;
  const int64_t b = next_batch_++;
  if (workers_.empty()) return BuildBatch(epoch_, b);
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return ready_.count(b) > 0; });
  Batch batch = std::move(ready_[b]);
  ready_.erase(b);
  consumed_ = b + 1;
  lock.unlock();
  cv_.notify_all();
  return batch;
}

}  // namespace pendulum::train
