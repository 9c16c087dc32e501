// Winograd convolutions for the CPU float32 path: oneDNN's F(4x4, 3x3)
// kernels, called directly. libtorch's own convolution always asks oneDNN
// for direct convolution; on this model's 3x3 layers with 32 and 64
// channels the Winograd kernels need about half the time, forward and
// backward (README, "Measured figures").
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace mnist {

/// Padding of the input's H and W, in pixels (TF's "same" padding may put
/// more after than before).
struct ConvPadding {
  int64_t top = 0;
  int64_t bottom = 0;
  int64_t left = 0;
  int64_t right = 0;
};

/// Whether this build calls oneDNN itself (CMake found oneDNN's headers:
/// Debian's libdnnl-dev) and this CPU has its Winograd kernels (AVX-512).
bool winograd_available();

/// Turns the Winograd path on or off for the whole process (on by default
/// where available; `--no-winograd`). Off, every convolution is libtorch's.
void set_winograd_enabled(bool on);
bool winograd_enabled();

/// Whether winograd_conv2d() takes this convolution: enabled and available;
/// a float32 CPU input [N,C,H,W] and kernel [O,C,3,3] (any memory format),
/// stride 1, even padding (top = bottom, left = right), no autocast, C and
/// O multiples of 16, and oneDNN offers a
/// Winograd kernel for the shape. The answer is cached per shape.
bool winograd_supports(const at::Tensor& input, const at::Tensor& kernel, const ConvPadding& pad);

/// relu(conv2d(input, kernel, bias)) when `relu`, else conv2d(...): the
/// same result as libtorch's, to float32 rounding (Winograd transforms
/// round differently from direct summation). Differentiable in all three
/// tensors; the result and the input's gradient are channels-last. `bias`
/// may be undefined. Only for shapes that winograd_supports() accepts;
/// throws ConfigError otherwise.
at::Tensor winograd_conv2d(const at::Tensor& input,
                           const at::Tensor& kernel,
                           const at::Tensor& bias,
                           const ConvPadding& pad,
                           bool relu);

}  // namespace mnist
