// Every layout conversion between libtorch's tensors and the TF.js Layers
// format, both ways, in one place (private to src/tfjs_io/):
// - axes, by each weight's WeightLayout (layers.hpp): conv kernels
//   [O,I,H,W] <-> HWIO, dense kernels [out,in] <-> [in,out], vectors unchanged (Model flattens in
//   NHWC order, so no flatten-order permutation is needed);
// - bytes: little-endian float32, whatever the host's byte order, and the
//   quantized forms TF.js decodes (uint8, uint16, float16).
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "mnist/layers.hpp"

namespace mnist::tfjs {

/// A libtorch parameter of `layout` seen in TF.js layout (a permuted view,
/// no copy).
at::Tensor tfjs_view(const at::Tensor& param, WeightLayout layout);

/// Appends `tensor` (any layout, device, floating type) to `out` as TF.js
/// stores it: in TF.js layout, little-endian float32, no padding.
void append_tfjs_weight(std::vector<char>& out, const at::Tensor& param, WeightLayout layout);

/// Copies `count` little-endian float32 values from `bytes` into `param`
/// (libtorch layout), reading them in TF.js layout. Returns false, leaving
/// `param` unchanged, if a value is NaN or infinite.
bool copy_tfjs_weight(const char* bytes, at::Tensor& param, WeightLayout layout);

/// The same from float32 values already decoded (decode_weight_values).
bool copy_tfjs_weight(const std::vector<float>& values, at::Tensor& param, WeightLayout layout);

}  // namespace mnist::tfjs
