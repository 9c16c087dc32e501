// Device selection and CPU thread/allocator set-up.
#include "mnist/device.hpp"

#include <dlfcn.h>
#include <malloc.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include "mnist/error.hpp"

#ifdef MNIST_WITH_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace mnist {

c10::Device select_device(bool gpu) {
  if (!gpu) {
    return c10::Device(c10::kCPU);
  }
  if (!at::hasCUDA()) {
    throw DeviceError(
        std::string("--gpu: this build's libtorch has no CUDA support "
                    "(Debian's libtorch is CPU-only); rebuild against a "
                    "CUDA-enabled libtorch, ") + kCudaReadmeHint);
  }
  if (!torch::cuda::is_available()) {
    throw DeviceError(
        std::string("--gpu: libtorch has CUDA support but no CUDA GPU is "
                    "visible (check nvidia-smi, the driver and "
                    "CUDA_VISIBLE_DEVICES); ") + kCudaReadmeHint);
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
  if (auto* set_openblas = reinterpret_cast<SetThreads>(
          dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_openblas(1);
  }
  at::set_num_threads(threads);
  return threads;
}

void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
}

const char* precision_name(Precision precision) {
  return precision == Precision::kBFloat16 ? "bf16" : "fp32";
}

bool cpu_has_bf16() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) == 0) {
      return line.find(" avx512_bf16") != std::string::npos ||
             line.find(" amx_bf16") != std::string::npos;
    }
  }
  return false;
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

#ifdef MNIST_WITH_CUDA_GRAPHS

struct GraphedStep::Impl {
  Step step;
  at::Tensor indices;  // the captured step reads its batch through this
  int warmup_left = 0;
  std::optional<c10::cuda::CUDAStream> side;
  std::unique_ptr<at::cuda::CUDAGraph> graph;
};

bool GraphedStep::available() { return true; }

GraphedStep::GraphedStep(Step step, int64_t batch_size, const c10::Device& device, int warmup) {
  if (!device.is_cuda()) {
    throw DeviceError("CUDA graphs need a CUDA device");
  }
  const c10::cuda::CUDAGuard on_device(device);
  impl_ = std::make_unique<Impl>();
  impl_->step = std::move(step);
  impl_->indices = at::zeros({batch_size}, at::TensorOptions(device).dtype(at::kLong));
  impl_->warmup_left = std::max(warmup, 1);
  impl_->side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
}

GraphedStep::~GraphedStep() = default;

void GraphedStep::operator()(const at::Tensor& batch_indices) {
  Impl& s = *impl_;
  s.indices.copy_(batch_indices);
  if (s.graph) {
    s.graph->replay();  // on the current stream, after the copy above
    return;
  }
  // Warm-up and capture run on a side stream (a capture cannot use the
  // default stream); full synchronisation around them keeps the ordering
  // simple, and happens only warmup + 1 times.
  c10::cuda::device_synchronize();
  bool captured = false;
  {
    const c10::cuda::CUDAStreamGuard on_side(*s.side);
    if (s.warmup_left > 0) {
      --s.warmup_left;
      s.step(s.indices);
    } else {
      auto graph = std::make_unique<at::cuda::CUDAGraph>();
      try {
        graph->capture_begin();
        try {
          s.step(s.indices);
        } catch (...) {
          try {
            graph->capture_end();
          } catch (...) {  // NOLINT(bugprone-empty-catch): the first error is the one to report
          }
          throw;
        }
        graph->capture_end();
      } catch (const c10::Error& e) {
        throw DeviceError(std::string("capturing the training step as a CUDA graph failed (") +
                          e.what_without_backtrace() +
                          "); train without CUDA graphs (mnist-train --no-cuda-graphs)");
      }
      s.graph = std::move(graph);
      captured = true;
    }
  }
  c10::cuda::device_synchronize();
  if (captured) {
    s.graph->replay();  // the capture only recorded this batch's step
  }
}

#else  // no CUDA graphs in this build

struct GraphedStep::Impl {};

bool GraphedStep::available() { return false; }

GraphedStep::GraphedStep(Step /*step*/, int64_t /*batch_size*/, const c10::Device& /*device*/,
                         int /*warmup*/) {
  throw DeviceError(
      std::string("this build has no CUDA graph support (it needs a CUDA libtorch and the "
                  "CUDA toolkit's headers at build time); ") + kCudaReadmeHint);
}

GraphedStep::~GraphedStep() = default;

void GraphedStep::operator()(const at::Tensor& /*batch_indices*/) {}

#endif

}  // namespace mnist
