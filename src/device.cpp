// Device selection and CPU thread/allocator set-up.
#include "mnist/device.hpp"

#include <dlfcn.h>
#include <malloc.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include "mnist/error.hpp"

namespace mnist {

std::optional<std::string> cuda_unavailable_reason() {
  if (!at::hasCUDA()) {
    return std::string(
               "this build's libtorch has no CUDA support (Debian's libtorch is CPU-only); "
               "rebuild against a CUDA-enabled libtorch, ") +
           kCudaReadmeHint;
  }
  if (!torch::cuda::is_available()) {
    return std::string(
               "libtorch has CUDA support but no CUDA GPU is visible (check nvidia-smi, the "
               "driver and CUDA_VISIBLE_DEVICES); ") +
           kCudaReadmeHint;
  }
  return std::nullopt;
}

c10::Device select_device(bool gpu) {
  if (!gpu) {
    return c10::Device(c10::kCPU);
  }
  if (const auto reason = cuda_unavailable_reason()) {
    throw DeviceError("CUDA: " + *reason);
  }
  at::globalContext().setBenchmarkCuDNN(true);
  return c10::Device(c10::kCUDA, 0);
}

std::string describe_device(const c10::Device& device) {
  if (device.is_cuda()) {
    return "CUDA device " + std::to_string(device.index());
  }
  return "CPU (" + std::to_string(at::get_num_threads()) + " threads)";
}

int configure_cpu_threads(int threads) {
  if (threads <= 0) {
    threads = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  }
  using SetThreads = void (*)(int);
  if (auto* set_openblas =
          reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_openblas(1);
  }
  at::set_num_threads(threads);
  return threads;
}

std::optional<std::string> openblas_coretype_fix() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) {
    return std::nullopt;
  }
  using CoreName = char* (*)();
  auto* corename = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (corename == nullptr || corename() == nullptr) {
    return std::nullopt;
  }
  // OpenBLAS's cores without AVX2 kernels, as it names them.
  static const char* const kGeneric[] = {"Prescott",  "Core2",  "Penryn",     "Dunnington",
                                         "Nehalem",   "Atom",   "Katmai",     "Coppermine",
                                         "Northwood", "Banias", "Sandybridge"};
  const std::string name = corename();
  const bool generic = std::any_of(std::begin(kGeneric), std::end(kGeneric),
                                   [&](const char* g) { return name == g; });
  if (!generic) {
    return std::nullopt;
  }
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return "Haswell";
  }
  return std::nullopt;
}

void tune_allocator() {
  // What was freed so far (loading's scratch) goes back to the OS first:
  // from here on, nothing is.
  malloc_trim(0);
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  // glibc caps the mmap threshold at 32 MiB: a larger block (an activation
  // of MobileNet at 96x96 in batches of 128: 113 MB) was still mapped and
  // unmapped at every batch, its pages faulted in again each time
  // (docs/performance.md, trap 13). No mmap at all: every block from the
  // heap, kept for the next batch.
  mallopt(M_MMAP_MAX, 0);
}

const char* precision_name(Precision precision) {
  return precision == Precision::kBFloat16 ? "bf16" : "fp32";
}

bool cpu_has_bf16() {
  static const bool has = [] {
    bool flags = false;
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
      if (line.rfind("flags", 0) == 0) {
        flags = line.find(" avx512_bf16") != std::string::npos ||
                line.find(" amx_bf16") != std::string::npos;
        break;
      }
    }
    // The oneDNN that libtorch loads may be held below the CPU's ISA
    // (ONEDNN_MAX_CPU_ISA=AVX2, as when emulating an AVX2 machine): then its
    // bf16 kernels are absent too. oneDNN's ISA values carry bit 0x80 from
    // avx512_core_bf16 up (dnnl_types.h).
    using EffectiveIsa = int (*)();
    if (auto* isa =
            reinterpret_cast<EffectiveIsa>(dlsym(RTLD_DEFAULT, "dnnl_get_effective_cpu_isa"))) {
      flags = flags && (isa() & 0x80) != 0;
    }
    return flags;
  }();
  return has;
}

// libtorch 2.4 replaced the per-device autocast functions by ones that take
// the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define MNIST_AUTOCAST_BY_DEVICE_TYPE 1
#endif

std::optional<c10::ScalarType> cpu_autocast_type() {
#ifdef MNIST_AUTOCAST_BY_DEVICE_TYPE
  if (!at::autocast::is_autocast_enabled(c10::DeviceType::CPU)) {
    return std::nullopt;
  }
  return at::autocast::get_autocast_dtype(c10::DeviceType::CPU);
#else
  if (!at::autocast::is_cpu_enabled()) {
    return std::nullopt;
  }
  return at::autocast::get_autocast_cpu_dtype();
#endif
}

AutocastGuard::AutocastGuard(Precision precision, const c10::Device& device)
    : active_(precision == Precision::kBFloat16), type_(device.type()) {
  if (!active_) {
    return;
  }
#ifdef MNIST_AUTOCAST_BY_DEVICE_TYPE
  was_enabled_ = at::autocast::is_autocast_enabled(type_);
  old_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_dtype(type_, at::kBFloat16);
  at::autocast::set_autocast_enabled(type_, true);
#else
  if (device.is_cuda()) {
    was_enabled_ = at::autocast::is_enabled();
    old_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    was_enabled_ = at::autocast::is_cpu_enabled();
    old_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
#endif
}

AutocastGuard::~AutocastGuard() {
  if (!active_) {
    return;
  }
#ifdef MNIST_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_enabled(type_, was_enabled_);
  at::autocast::set_autocast_dtype(type_, old_dtype_);
#else
  if (type_ == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(was_enabled_);
    at::autocast::set_autocast_gpu_dtype(old_dtype_);
  } else {
    at::autocast::set_cpu_enabled(was_enabled_);
    at::autocast::set_autocast_cpu_dtype(old_dtype_);
  }
#endif
  at::autocast::clear_cache();
}

}  // namespace mnist
