// Device selection (CPU or CUDA at run time), CPU thread set-up, and
// bf16 mixed precision (autocast).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

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

/// Compute precision. Weights, optimizer state and saved files stay float32
/// either way; kBFloat16 runs convolutions and matrix products in bfloat16
/// (autocast).
enum class Precision { kFloat32, kBFloat16 };

/// "fp32" or "bf16".
const char* precision_name(Precision precision);

/// Whether this CPU has bfloat16 instructions (AVX512_BF16 or AMX-BF16),
/// without which bf16 is slower than float32 here.
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

/// One training step run through a CUDA graph. The first `warmup` calls run
/// `step` eagerly on a side stream (cuDNN autotuning, lazy set-up), the next
/// one captures it and every later call replays the capture: one launch
/// instead of the ~150 small kernel launches (and their host-side dispatch)
/// of a step of this model. `step` gets the batch's indices in a tensor of
/// fixed address and size; it must read its inputs through it, run no host
/// synchronisation (no .item()) and update only tensors that stay in place
/// (parameters, optimizer state, device-side metric sums). No autograd graph
/// made before the first call may still be alive (a forward pass kept from
/// outside no-grad mode): its gradient accumulators would tie the capture to
/// the default stream, and the capture fails. Dropout's random numbers
/// differ on every replay (PyTorch's graph-safe generator offsets).
class GraphedStep {
 public:
  using Step = std::function<void(const at::Tensor& batch_indices)>;

  /// Whether this build can capture CUDA graphs (a CUDA libtorch and the
  /// CUDA toolkit's headers at build time).
  static bool available();

  /// Throws DeviceError when !available() or `device` is not CUDA.
  GraphedStep(Step step, int64_t batch_size, const c10::Device& device, int warmup = 3);
  GraphedStep(const GraphedStep&) = delete;
  GraphedStep& operator=(const GraphedStep&) = delete;
  ~GraphedStep();

  /// Runs the step for `batch_indices` (int64, batch_size long, on the device).
  void operator()(const at::Tensor& batch_indices);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnist
