// CPU convolutions and max pooling faster than libtorch's at::conv2d, which
// always asks oneDNN for direct float32 or autocast-cast bf16 kernels
// (sources in src/onednn/; when each path is taken: docs/design.md, "The CPU
// path"; what each brings: docs/performance.md):
// - float32: Winograd F(4x4, 3x3) on this model's 32- and 64-channel 3x3
//   layers, forward and backward: oneDNN's kernels where it has them
//   (AVX-512), else mnist-train's own (AVX2 + FMA, src/onednn/winograd.cpp);
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

/// Whether this build calls oneDNN itself and this CPU has oneDNN's float32
/// Winograd kernels (AVX-512).
bool winograd_available();

/// Whether mnist-train's own Winograd kernels run on this CPU (AVX2 + FMA).
bool own_winograd_available();

/// Whose Winograd kernels float32 3x3 convolutions get.
enum class WinogradKernels {
  kNone,     ///< none: direct convolutions (libtorch's)
  kOnednn,   ///< oneDNN's (AVX-512)
  kOwnAvx2,  ///< mnist-train's own (AVX2 + FMA)
};

/// The kernels in use: oneDNN's where present, else ours where the CPU runs
/// them, else none; or what set_winograd_kernels() chose.
WinogradKernels winograd_kernels();
/// Chooses them for the whole process (tests and the benchmark compare
/// them; choosing kernels the CPU lacks gives direct convolutions);
/// reset_winograd_kernels() returns to the default.
void set_winograd_kernels(WinogradKernels kernels);
void reset_winograd_kernels();
const char* winograd_kernels_name(WinogradKernels kernels);

/// Whether max pooling goes to oneDNN (where try_onednn_max_pool2d takes the
/// call) or stays libtorch's: by default oneDNN's where oneDNN runs AVX-512
/// kernels (there it took a fifth of libtorch's time on an AMD Zen 4), and
/// libtorch's on AVX2, where oneDNN's channels-last pooling took about five
/// times libtorch's (docs/performance.md). set_onednn_pooling() chooses it
/// for the whole process (tests, the benchmark); reset_onednn_pooling()
/// returns to the default.
bool onednn_pooling();
void set_onednn_pooling(bool on);
void reset_onednn_pooling();

/// What this model's 3x3 convolutions and max pooling run on this CPU as
/// things stand (enabled or not, the Winograd choice, the CPU), in bf16
/// autocast or float32; e.g. "convolutions: mnist-train's own Winograd
/// (AVX2) where the layer allows (3x3, stride 1, channels a multiple of
/// 16), else libtorch's; max pooling: oneDNN's".
std::string describe_cpu_kernels(bool bf16);

/// Turns these convolutions and max pooling on or off for the whole process
/// (on by default). Off, every convolution and pooling is libtorch's.
void set_onednn_enabled(bool on);
bool onednn_enabled();

/// Whether onednn_conv2d() takes this convolution: enabled; a CPU input
/// [N,C,H,W] and float32 kernel [O,C,3,3] (any memory format), stride 1;
/// and either
/// - a float32 input, no autocast, even padding (top = bottom, left =
///   right), C and O multiples of 16, and Winograd kernels (winograd_kernels())
///   for the shape;
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
/// caller then runs libtorch's): switched off (set_onednn_enabled or
/// onednn_pooling()), not a 4-D float32 or bf16 CPU
/// tensor, or padding not less than the window.
at::Tensor try_onednn_max_pool2d(const at::Tensor& input,
                                 at::IntArrayRef kernel,
                                 at::IntArrayRef strides,
                                 const ConvPadding& pad);

}  // namespace mnist
