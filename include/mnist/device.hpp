// Device selection (CPU or CUDA at run time), CPU thread set-up, and
// bf16 mixed precision (autocast).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace mnist {

/// The document section that explains how to build with CUDA.
constexpr const char* kCudaReadmeHint =
    "see docs/install.md, section \"GPU: building against a CUDA-enabled libtorch\"";

/// Why CUDA cannot be used here (this libtorch has no CUDA support, or no
/// GPU is visible), with how to fix it; nullopt when it can.
std::optional<std::string> cuda_unavailable_reason();

/// CPU, or CUDA device 0 when `gpu` is true. Throws DeviceError with
/// cuda_unavailable_reason() when CUDA is asked for but cannot be used:
/// never falls back to the CPU. Turns on cuDNN autotuning for CUDA.
c10::Device select_device(bool gpu);

/// One line naming the device, e.g. "CPU (2 threads)" or "CUDA: NVIDIA H100".
std::string describe_device(const c10::Device& device);

/// Uses `threads` CPU threads for libtorch (0: one per core). Also limits
/// OpenBLAS's own pool to one thread, since on few cores it fights
/// libtorch's OpenMP threads (docs/performance.md, trap 2). Returns the count set.
int configure_cpu_threads(int threads);

/// The OpenBLAS kernels to ask for (its OPENBLAS_CORETYPE variable, read
/// when OpenBLAS loads) where the OpenBLAS this process loaded picked
/// generic SSE kernels for a CPU it does not know: Debian's 0.3.21 takes an
/// Intel Xeon of family 6, model 207 for a "Prescott", and its float32
/// matrix products ran at 29 GFLOP/s on one core instead of 150 with
/// "SkylakeX" (docs/performance.md, trap 10). "SkylakeX" where the CPU has
/// AVX-512 (F, VL, BW, DQ), "Haswell" where it has AVX2 and FMA; nullopt
/// when OpenBLAS chose kernels of its own, is not loaded, or
/// OPENBLAS_CORETYPE is already set.
std::optional<std::string> openblas_coretype_fix();

/// Keeps glibc from returning large freed blocks to the OS after every
/// batch (docs/performance.md, traps 3 and 13: ~8,000 page faults per batch
/// otherwise): no trimming, and no block mapped on its own, however large.
/// What is free when it is called is returned to the OS first, so call it
/// once the data is loaded, before the first batch.
void tune_allocator();

/// Compute precision. Weights, optimizer state and saved files stay float32
/// either way; kBFloat16 runs convolutions and matrix products in bfloat16
/// (autocast).
enum class Precision { kFloat32, kBFloat16 };

/// "fp32" or "bf16".
const char* precision_name(Precision precision);

/// Whether this CPU has bfloat16 instructions (AVX512_BF16 or AMX-BF16) and
/// the oneDNN libtorch loads may use them (not held to a lower ISA by
/// ONEDNN_MAX_CPU_ISA); without them bf16 is far slower than float32 here.
bool cpu_has_bf16();

/// The type this thread autocasts to on the CPU (bf16 while a CPU
/// AutocastGuard lives), or nothing when CPU autocast is off.
std::optional<c10::ScalarType> cpu_autocast_type();

/// Turns autocast to bfloat16 on for `device` while it lives (nothing for
/// kFloat32) and clears autocast's cache of cast weights when it ends, so
/// that the next step casts the updated weights.
class AutocastGuard {
 public:
  AutocastGuard(Precision precision, const c10::Device& device);
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;
  ~AutocastGuard();

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool was_enabled_ = false;
  c10::ScalarType old_dtype_ = c10::ScalarType::BFloat16;
};

}  // namespace mnist
