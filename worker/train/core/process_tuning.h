// Process-wide settings that decide LibTorch's CPU speed but live outside it.
//
// BLAS threads: Debian's LibTorch calls the pthread build of OpenBLAS, whose
// own pool at::set_num_threads does not size; left alone it runs (and spins)
// on every core, so a "1-thread" run competes with its neighbours.
//
// malloc: training tensors of ~100 KB-1 MB sit at glibc's sliding mmap
// threshold, so depending on allocation history each step either reuses heap
// memory or mmaps fresh pages (600-900 page faults and several ms of kernel
// time per step measured for the 2-bit OFQ MLP). Fixed thresholds keep them
// on the heap. Both found by bench_train_ofq_step (issue 4).
#pragma once

namespace pendulum::train {

// Sizes OpenBLAS's pool when the process has OpenBLAS (found at run time,
// so other BLAS builds are unaffected). Returns whether it did.
bool SetBlasThreads(int threads);

// Fixes glibc's mmap/trim thresholds; call once at process start.
void TuneMallocForTraining();

}  // namespace pendulum::train
