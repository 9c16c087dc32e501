// Device selection and CPU thread/allocator set-up.
#include "mnist/device.hpp"

#include <dlfcn.h>
#include <malloc.h>

#include <climits>
#include <thread>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include "mnist/error.hpp"

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

}  // namespace mnist
