// CUDA graphs for the training step (see cuda_graph.hpp).
#include "mnist/cuda_graph.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include <ATen/ATen.h>

#include "mnist/device.hpp"
#include "mnist/error.hpp"

#ifdef MNIST_WITH_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace mnist {

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

bool GraphedStep::operator()(const at::Tensor& batch_indices) {
  Impl& s = *impl_;
  s.indices.copy_(batch_indices);
  if (s.graph) {
    s.graph->replay();  // on the current stream, after the copy above
    return true;
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
                              e.what_without_backtrace() + ")",
                          Remedy::kNoCudaGraphs);
      }
      s.graph = std::move(graph);
      captured = true;
    }
  }
  c10::cuda::device_synchronize();
  if (captured) {
    s.graph->replay();  // the capture only recorded this batch's step
  }
  return false;  // the step's host code ran (warm-up or capture)
}

#else  // no CUDA graphs in this build

struct GraphedStep::Impl {};

bool GraphedStep::available() { return false; }

GraphedStep::GraphedStep(Step /*step*/,
                         int64_t /*batch_size*/,
                         const c10::Device& /*device*/,
                         int /*warmup*/) {
  throw DeviceError(
      std::string("this build has no CUDA graph support (it needs a CUDA libtorch and the "
                  "CUDA toolkit's headers at build time); ") +
      kCudaReadmeHint);
}

GraphedStep::~GraphedStep() = default;

bool GraphedStep::operator()(const at::Tensor& /*batch_indices*/) { return false; }

#endif

}  // namespace mnist
