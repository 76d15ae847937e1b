#include "worker/train/core/process_tuning.h"

#include <dlfcn.h>
#include <malloc.h>

namespace pendulum::train {

bool SetBlasThreads(int threads) {
  using SetThreadsFn = void (*)(int);
  // Looked up, not linked: a CUDA/MKL LibTorch has no OpenBLAS.
  auto* fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (fn == nullptr) return false;
  fn(threads);
  return true;
}

void TuneMallocForTraining() {
#ifdef M_MMAP_THRESHOLD
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // tensors up to 32 MiB come from the heap
  mallopt(M_TRIM_THRESHOLD, 256 << 20);  // and freed memory stays for the next step
#endif
}

}  // namespace pendulum::train
