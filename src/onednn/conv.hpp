// oneDNN's own convolution kernels (conv.cpp, built with oneDNN's headers
// only; a build without them gets the stubs below), for the dispatch in
// common.cpp. Private to the oneDNN module.
#pragma once

#include <ATen/core/Tensor.h>

#include "mnist/onednn.hpp"

namespace mnist::onednn {

#ifdef MNIST_WITH_ONEDNN

/// Whether oneDNN has its float32 Winograd kernels on this CPU (AVX-512).
bool winograd_present();

/// Whether oneDNN's kernels take this convolution (see onednn_conv_supports;
/// float32 ones only while winograd_kernels() is kOnednn).
bool conv_supported(const at::Tensor& input, const at::Tensor& kernel, const ConvPadding& pad);

/// oneDNN's convolution where conv_supported(), else an undefined tensor.
at::Tensor try_conv2d(const at::Tensor& input,
                      const at::Tensor& kernel,
                      const at::Tensor& bias,
                      const ConvPadding& pad,
                      bool relu);

#else

inline bool winograd_present() { return false; }
inline bool conv_supported(const at::Tensor&, const at::Tensor&, const ConvPadding&) {
  return false;
}
inline at::Tensor try_conv2d(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const ConvPadding&, bool) {
  return at::Tensor();
}

#endif

}  // namespace mnist::onednn
