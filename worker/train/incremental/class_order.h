#pragma once
// The class order of a class-incremental scenario: numpy's legacy
// `np.random.seed(seed); np.random.permutation(n)` reproduced bit for bit
// (MT19937 init_genrand + Fisher–Yates with masked rejection sampling), so
// seed 1993 gives PyCIL's and the official WA code's order. Pure; any thread.

#include <cstdint>
#include <vector>

namespace pendulum::train::incremental {

std::vector<int64_t> NumpyLegacyPermutation(int64_t n, uint32_t seed);

}  // namespace pendulum::train::incremental
