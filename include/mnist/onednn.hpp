// CPU convolutions and max pooling through oneDNN, called directly rather
// than through libtorch's at::conv2d, which always asks oneDNN for direct
// float32 or autocast-cast bf16 kernels (sources in src/onednn/; when each
// path is taken: docs/design.md, "The CPU path"):
// - float32: oneDNN's Winograd F(4x4, 3x3) kernels, about half the time of
//   the direct ones on this model's 32- and 64-channel 3x3 layers, forward
//   and backward;
// - bf16 autocast: the same direct bf16 kernels, but reading the float32
//   master weights and writing float32 weight gradients (no bf16 copies or
//   bf16-rounded gradients), with ReLU fused into the forward pass.
// And the max pooling that follows them, through oneDNN's pooling.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

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
/// Debian's libdnnl-dev).
bool onednn_built();

/// The instruction set oneDNN dispatches its kernels for on this machine
/// (dnnl_get_effective_cpu_isa: the CPU's, or less under
/// ONEDNN_MAX_CPU_ISA), e.g. "avx2" or "avx512_core_amx".
std::string onednn_cpu_isa();

/// Whether this build calls oneDNN itself and this CPU has its float32
/// Winograd kernels (AVX-512).
bool winograd_available();

/// Turns these convolutions and max pooling on or off for the whole process
/// (on by default). Off, every convolution and pooling is libtorch's.
void set_onednn_enabled(bool on);
bool onednn_enabled();

/// Whether onednn_conv2d() takes this convolution: enabled; a CPU input
/// [N,C,H,W] and float32 kernel [O,C,3,3] (any memory format), stride 1;
/// and either
/// - a float32 input, no autocast, even padding (top = bottom, left =
///   right), C and O multiples of 16, and Winograd kernels for the shape;
/// - or bf16 CPU autocast on, a float32 or bf16 input, and oneDNN's bf16
///   kernels for the shape.
/// The answer is cached per shape.
bool onednn_conv_supports(const at::Tensor& input,
                          const at::Tensor& kernel,
                          const ConvPadding& pad);

/// relu(conv2d(input, kernel, bias)) when `relu`, else conv2d(...): what
/// libtorch computes, to float32 rounding (Winograd transforms round
/// differently from direct sums), or in bf16 under autocast. Differentiable
/// in all three tensors; the result and the input's gradient are
/// channels-last, float32 (bf16 under autocast); the kernel's and bias's
/// gradients are float32. `bias` may be undefined. Only for calls that
/// onednn_conv_supports() accepts; throws ConfigError otherwise.
at::Tensor onednn_conv2d(const at::Tensor& input,
                         const at::Tensor& kernel,
                         const at::Tensor& bias,
                         const ConvPadding& pad,
                         bool relu);

/// onednn_conv2d() where onednn_conv_supports() would accept the call, else
/// an undefined tensor (the caller then runs libtorch's convolution): one
/// shape lookup per call, for the forward pass.
at::Tensor try_onednn_conv2d(const at::Tensor& input,
                             const at::Tensor& kernel,
                             const at::Tensor& bias,
                             const ConvPadding& pad,
                             bool relu);

/// max_pool2d(input) with `kernel` and `strides` (H, W) over an input
/// padded by `pad` (padded cells never win, as in TF's "same" pooling),
/// through oneDNN's pooling: about a fifth of libtorch's time on
/// channels-last tensors, forward and backward (the backward pass reads
/// which cell of each window won from a workspace the forward pass wrote).
/// Differentiable in `input`; the result and the gradient are channels-last,
/// in the input's type. An undefined tensor where it does not apply (the
/// caller then runs libtorch's): switched off, not a 4-D float32 or bf16 CPU
/// tensor, or padding not less than the window.
at::Tensor try_onednn_max_pool2d(const at::Tensor& input,
                                 at::IntArrayRef kernel,
                                 at::IntArrayRef strides,
                                 const ConvPadding& pad);

}  // namespace mnist
