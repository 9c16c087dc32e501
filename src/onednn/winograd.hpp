// Our own Winograd F(4x4, 3x3) convolution for CPUs where oneDNN has none
// (AVX2 and FMA, no AVX-512: oneDNN 2.6's Winograd kernels are AVX-512
// only). Private to the oneDNN module (include/mnist/onednn.hpp); the
// measurements that justify it are in docs/performance.md.
//
// Per 4x4 output tile, Y = A^T [(G g G^T) . (B^T d B)] A (Lavin and Gray's
// matrices, points 0, +-1, +-2): 36 multiplications per channel pair instead
// of 144. Tensors stay channels-last, so each transform works on 8 channels
// at a time; tiles are processed in chunks of whole images that stay in the
// core's cache: input transform, 36 small matrix products, output
// transform. The backward pass is the exact gradient of that computation:
// dM = A dY A^T, then dU = V^T dM (the kernel's gradient, G^T dU G) and
// dV = dM U^T (the input's, B dV B^T added tile by tile).
#pragma once

#include <ATen/core/Tensor.h>

namespace mnist::winograd {

/// Whether this CPU runs these kernels (AVX2 and FMA).
bool cpu_supported();

/// Whether a convolution of this input [N,C,H,W] (float32, CPU) and kernel
/// [O,C,3,3] (float32), stride 1, padding (pad_h, pad_w) on both sides, is
/// one these kernels take: C and O multiples of 16, an output at least 1x1.
bool applies(const at::Tensor& input, const at::Tensor& kernel, int64_t pad_h, int64_t pad_w);

/// relu(conv2d(input, kernel, bias)) when `relu`, else conv2d(...), padded
/// by (pad_h, pad_w) on both sides; differentiable in all three (autograd
/// records it when one of them requires a gradient). The result is
/// channels-last float32. Only where applies() and cpu_supported().
at::Tensor conv2d(const at::Tensor& input,
                  const at::Tensor& kernel,
                  const at::Tensor& bias,
                  int64_t pad_h,
                  int64_t pad_w,
                  bool relu);

}  // namespace mnist::winograd
