// CUDA graphs for the training step: capture one step once, replay it for
// every full-size batch (docs/design.md, "The CUDA path"). Builds without a
// CUDA libtorch or the CUDA toolkit's headers have the class but refuse it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace mnist {

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
  /// Returns true when it replayed an earlier capture: `step`'s host code did
  /// not run (the caller counts what that code would have counted).
  bool operator()(const at::Tensor& batch_indices);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnist
