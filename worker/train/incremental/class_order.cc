#include "worker/train/incremental/class_order.h"

#include <random>
#include <utility>

namespace pendulum::train::incremental {

namespace {
// numpy random_interval(max) for max < 2^32 on the legacy MT19937 bit generator.
uint64_t RandomInterval(std::mt19937& mt, uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  uint64_t value;
  do {
    value = static_cast<uint64_t>(mt()) & mask;
  } while (value > max);
  return value;
}
}  // namespace

std::vector<int64_t> NumpyLegacyPermutation(int64_t n, uint32_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  std::mt19937 mt(seed);  // the same init_genrand as numpy's RandomState.seed(int)
  for (int64_t i = n - 1; i >= 1; --i) {
    const uint64_t j = RandomInterval(mt, static_cast<uint64_t>(i));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

}  // namespace pendulum::train::incremental
