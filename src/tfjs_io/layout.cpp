// libtorch <-> TF.js layout conversions (see layout.hpp).
#include "tfjs_io/layout.hpp"

#include <cstring>
#include <utility>

#include <ATen/ATen.h>
#include <torch/utils.h>

namespace mnist::tfjs {

namespace {

/// The axis order that turns a libtorch parameter into TF.js layout.
std::vector<int64_t> tfjs_axes(int64_t dim) {
  if (dim == 4) {
    return {2, 3, 1, 0};  // [O,I,H,W] -> [H,W,I,O]
  }
  if (dim == 2) {
    return {1, 0};  // [out,in] -> [in,out]
  }
  return {0};
}

constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

void swap_float32_bytes(char* data, size_t size) {
  for (size_t i = 0; i + 3 < size; i += 4) {
    std::swap(data[i], data[i + 3]);
    std::swap(data[i + 1], data[i + 2]);
  }
}

}  // namespace

at::Tensor tfjs_view(const at::Tensor& param) { return param.permute(tfjs_axes(param.dim())); }

void append_tfjs_weight(std::vector<char>& out, const at::Tensor& param) {
  const at::Tensor t = tfjs_view(param.detach()).to(at::kCPU, at::kFloat).contiguous();
  const auto* data = static_cast<const char*>(t.data_ptr());
  const size_t size = static_cast<size_t>(t.numel()) * sizeof(float);
  const size_t offset = out.size();
  out.insert(out.end(), data, data + size);
  if (!kLittleEndian) {
    swap_float32_bytes(out.data() + offset, size);
  }
}

bool copy_tfjs_weight(const char* bytes, at::Tensor& param) {
  const at::Tensor view = tfjs_view(param);
  at::Tensor value = at::empty(view.sizes(), at::kFloat);
  const size_t size = static_cast<size_t>(value.numel()) * sizeof(float);
  std::memcpy(value.data_ptr(), bytes, size);
  if (!kLittleEndian) {
    swap_float32_bytes(static_cast<char*>(value.data_ptr()), size);
  }
  if (!at::isfinite(value).all().item<bool>()) {
    return false;
  }
  const torch::NoGradGuard no_grad;
  view.copy_(value);
  return true;
}

}  // namespace mnist::tfjs
