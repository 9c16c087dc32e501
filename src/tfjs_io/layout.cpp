// libtorch <-> TF.js layout conversions (see layout.hpp).
#include "tfjs_io/layout.hpp"

#include "mnist/tfjs_io.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include <ATen/ATen.h>
#include <c10/util/Half.h>
#include <torch/utils.h>

namespace mnist::tfjs {

namespace {

/// The axis order that turns a libtorch parameter into TF.js layout.
std::vector<int64_t> tfjs_axes(WeightLayout layout, int64_t dim) {
  switch (layout) {
    case WeightLayout::kConvKernel:
      return {2, 3, 1, 0};  // [O,I,H,W] -> [H,W,I,O]
    case WeightLayout::kDenseKernel:
      return {1, 0};  // [out,in] -> [in,out]
    case WeightLayout::kVector:
      break;
  }
  std::vector<int64_t> same(static_cast<size_t>(dim));
  for (int64_t i = 0; i < dim; ++i) {
    same[static_cast<size_t>(i)] = i;
  }
  return same;
}

constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

void swap_float32_bytes(char* data, size_t size) {
  for (size_t i = 0; i + 3 < size; i += 4) {
    std::swap(data[i], data[i + 3]);
    std::swap(data[i + 1], data[i + 2]);
  }
}

}  // namespace

at::Tensor tfjs_view(const at::Tensor& param, WeightLayout layout) {
  return param.permute(tfjs_axes(layout, param.dim()));
}

void append_tfjs_weight(std::vector<char>& out, const at::Tensor& param, WeightLayout layout) {
  const at::Tensor t = tfjs_view(param.detach(), layout).to(at::kCPU, at::kFloat).contiguous();
  const auto* data = static_cast<const char*>(t.data_ptr());
  const size_t size = static_cast<size_t>(t.numel()) * sizeof(float);
  const size_t offset = out.size();
  out.insert(out.end(), data, data + size);
  if (!kLittleEndian) {
    swap_float32_bytes(out.data() + offset, size);
  }
}

bool copy_tfjs_weight(const char* bytes, at::Tensor& param, WeightLayout layout) {
  const at::Tensor view = tfjs_view(param, layout);
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

bool copy_tfjs_weight(const std::vector<float>& values, at::Tensor& param, WeightLayout layout) {
  const at::Tensor view = tfjs_view(param, layout);
  if (static_cast<size_t>(view.numel()) != values.size()) {
    return false;
  }
  const at::Tensor value =
      at::from_blob(const_cast<float*>(values.data()), view.sizes(), at::kFloat);
  if (!at::isfinite(value).all().item<bool>()) {
    return false;
  }
  const torch::NoGradGuard no_grad;
  view.copy_(value);
  return true;
}

}  // namespace mnist::tfjs

namespace mnist {

size_t bytes_per_value(WeightStorage storage) {
  switch (storage) {
    case WeightStorage::kUint8:
      return 1;
    case WeightStorage::kUint16:
    case WeightStorage::kFloat16:
      return 2;
    case WeightStorage::kFloat32:
      break;
  }
  return 4;
}

const char* storage_name(WeightStorage storage) {
  switch (storage) {
    case WeightStorage::kUint8:
      return "uint8";
    case WeightStorage::kUint16:
      return "uint16";
    case WeightStorage::kFloat16:
      return "float16";
    case WeightStorage::kFloat32:
      break;
  }
  return "float32";
}

std::optional<WeightStorage> parse_storage(const std::string& name) {
  for (const WeightStorage s : {WeightStorage::kFloat32, WeightStorage::kUint8,
                                WeightStorage::kUint16, WeightStorage::kFloat16}) {
    if (name == storage_name(s)) {
      return s;
    }
  }
  return std::nullopt;
}

StoredWeight store_weight_values(const std::vector<float>& values, WeightStorage storage) {
  StoredWeight out;
  out.encoding.storage = storage;
  const size_t width = bytes_per_value(storage);
  out.bytes.reserve(values.size() * width);
  const auto put = [&out, width](uint32_t bits) {
    for (size_t b = 0; b < width; ++b) {
      out.bytes.push_back(static_cast<char>((bits >> (8 * b)) & 0xFFu));
    }
  };
  if (storage == WeightStorage::kFloat32 || storage == WeightStorage::kFloat16) {
    for (const float v : values) {
      uint32_t bits = 0;
      if (storage == WeightStorage::kFloat16) {
        bits = c10::Half(v).x;  // round to nearest even, as numpy's astype
      } else {
        std::memcpy(&bits, &v, sizeof bits);
      }
      put(bits);
    }
    return out;
  }
  const double quant_max = storage == WeightStorage::kUint8 ? 255.0 : 65535.0;
  double lo = 0.0;
  double hi = 0.0;
  if (!values.empty()) {
    const auto [mn, mx] = std::minmax_element(values.begin(), values.end());
    lo = *mn;
    hi = *mx;
  }
  if (lo == hi) {
    out.encoding.min = lo;
    out.encoding.scale = 1.0;
    out.bytes.assign(values.size() * width, '\0');
    return out;
  }
  const double scale = (hi - lo) / quant_max;
  double nudged_min = lo;
  double nudged_max = hi;
  if (lo <= 0.0 && 0.0 <= hi) {
    // 0 becomes the integer q0 exactly: min = -q0 * scale.
    nudged_min = -std::nearbyint(-lo / scale) * scale;
    nudged_max = quant_max * scale + nudged_min;
  }
  out.encoding.min = nudged_min;
  out.encoding.scale = scale;
  for (const float v : values) {
    const double clipped = std::min(std::max(static_cast<double>(v), nudged_min), nudged_max);
    const double q = std::nearbyint((clipped - nudged_min) / scale);  // half to even
    put(static_cast<uint32_t>(std::min(std::max(q, 0.0), quant_max)));
  }
  return out;
}

float half_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu;
  uint32_t mantissa = bits & 0x3FFu;
  uint32_t out = 0;
  if (exponent == 0x1F) {
    out = sign | 0x7F800000u | (mantissa << 13);  // infinity or NaN
  } else if (exponent != 0) {
    out = sign | ((exponent + 112) << 23) | (mantissa << 13);  // 127 - 15 = 112
  } else if (mantissa != 0) {
    // A subnormal half is a normal float: shift the mantissa up to its
    // leading one, lowering the exponent as it goes.
    uint32_t e = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    out = sign | (e << 23) | ((mantissa & 0x3FFu) << 13);
  } else {
    out = sign;  // +-0
  }
  float f = 0;
  std::memcpy(&f, &out, sizeof f);
  return f;
}

namespace {

/// double -> float rounded to nearest as IEEE (and JavaScript's Float32Array)
/// does, beyond float's range too: there a cast would be undefined behaviour.
float round_to_float(double d) {
  constexpr double kMax = std::numeric_limits<float>::max();
  constexpr double kHalfUlpAtMax = 0x1p103;  // rounds down to kMax below this
  if (std::fabs(d) > kMax) {
    const float edge = std::fabs(d) < kMax + kHalfUlpAtMax ? std::numeric_limits<float>::max()
                                                           : std::numeric_limits<float>::infinity();
    return d < 0 ? -edge : edge;
  }
  return static_cast<float>(d);  // NaN stays NaN
}

}  // namespace

std::vector<float> decode_weight_values(const char* bytes,
                                        size_t count,
                                        const WeightEncoding& encoding) {
  std::vector<float> values(count);
  const auto* b = reinterpret_cast<const uint8_t*>(bytes);
  switch (encoding.storage) {
    case WeightStorage::kFloat32:
      for (size_t i = 0; i < count; ++i) {
        const uint32_t u = uint32_t{b[4 * i]} | uint32_t{b[4 * i + 1]} << 8 |
                           uint32_t{b[4 * i + 2]} << 16 | uint32_t{b[4 * i + 3]} << 24;
        std::memcpy(&values[i], &u, sizeof u);
      }
      break;
    case WeightStorage::kUint8:
      for (size_t i = 0; i < count; ++i) {
        values[i] = round_to_float(b[i] * encoding.scale + encoding.min);
      }
      break;
    case WeightStorage::kUint16:
      for (size_t i = 0; i < count; ++i) {
        const auto q = static_cast<uint16_t>(b[2 * i] | b[2 * i + 1] << 8);
        values[i] = round_to_float(q * encoding.scale + encoding.min);
      }
      break;
    case WeightStorage::kFloat16:
      for (size_t i = 0; i < count; ++i) {
        values[i] = half_to_float(static_cast<uint16_t>(b[2 * i] | b[2 * i + 1] << 8));
      }
      break;
  }
  return values;
}

}  // namespace mnist
