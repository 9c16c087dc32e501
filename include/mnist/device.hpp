// Device selection (CPU or CUDA at run time) and CPU thread set-up.
#pragma once

#include <string>

#include <c10/core/Device.h>

namespace mnist {

/// The README section that explains how to build with CUDA.
constexpr const char* kCudaReadmeHint =
    "see README.md, section \"GPU: building against a CUDA-enabled libtorch\"";

/// CPU, or CUDA device 0 when `gpu` is true. Throws DeviceError, saying why,
/// when CUDA is asked for but this libtorch has no CUDA support or no GPU is
/// visible. Never falls back to the CPU. Turns on cuDNN autotuning for CUDA.
c10::Device select_device(bool gpu);

/// One line naming the device, e.g. "CPU (2 threads)" or "CUDA: NVIDIA H100".
std::string describe_device(const c10::Device& device);

/// Uses `threads` CPU threads for libtorch (0: one per core). Also limits
/// OpenBLAS's own pool to one thread, since on few cores it fights
/// libtorch's OpenMP threads (docs: perf-notes trap 2). Returns the count set.
int configure_cpu_threads(int threads);

/// Keeps glibc from returning large freed blocks to the OS after every
/// batch (perf-notes trap 3: ~8,000 page faults per batch otherwise).
void tune_allocator();

}  // namespace mnist
