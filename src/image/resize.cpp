// tf.image.resize's two kernels as TensorFlow computes them on the CPU
// (resize_bilinear_op.cc, resize_nearest_neighbor_op.cc, with
// half_pixel_centers=true and align_corners=false, as tf.image.resize calls
// them), in float32 like them, and Keras's smart_resize crop box. Compiled
// with -ffp-contract=off (src/CMakeLists.txt): a fused multiply-add would round
// differently from TF's separate multiply and add.
#include <algorithm>
#include <cmath>
#include <vector>

#include "mnist/image.hpp"

namespace mnist {

namespace {

/// One output coordinate's bilinear source: TF's CachedInterpolation.
struct Lerp {
  int64_t lower = 0;
  int64_t upper = 0;
  float lerp = 0.0F;
};

/// TF's compute_interpolation_weights with HalfPixelScaler: the source
/// coordinate (i + 0.5) * scale - 0.5 in float32, its floor clamped at 0 and
/// its ceiling at in_size - 1, the fraction from the unclamped floor.
std::vector<Lerp> lerps(int64_t out_size, int64_t in_size) {
  // CalculateResizeScale without align_corners: in / out in float32.
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  std::vector<Lerp> result(static_cast<size_t>(out_size));
  for (int64_t i = 0; i < out_size; ++i) {
    const float in = (static_cast<float>(i) + 0.5F) * scale - 0.5F;
    const float in_floor = std::floor(in);
    Lerp& l = result[static_cast<size_t>(i)];
    l.lower = std::max(static_cast<int64_t>(in_floor), int64_t{0});
    l.upper = std::min(static_cast<int64_t>(std::ceil(in)), in_size - 1);
    l.lerp = in - in_floor;
  }
  return result;
}

/// TF's nearest source with HalfPixelScalerForNN: floor((i + 0.5) * scale) in
/// float32, clamped to the image.
std::vector<int64_t> nearest(int64_t out_size, int64_t in_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  std::vector<int64_t> result(static_cast<size_t>(out_size));
  for (int64_t i = 0; i < out_size; ++i) {
    const auto source = static_cast<int64_t>(std::floor((static_cast<float>(i) + 0.5F) * scale));
    result[static_cast<size_t>(i)] = std::max(int64_t{0}, std::min(source, in_size - 1));
  }
  return result;
}

}  // namespace

CropBox aspect_crop(int64_t height, int64_t width, int64_t target_height, int64_t target_width) {
  // smart_resize's TensorFlow path (dynamic shapes): int32(float32(w * th) / tw),
  // then min(h, .), max(., 1); the start int32(float32(h - crop) / 2).
  const auto crop = [](int64_t other, int64_t target, int64_t target_other, int64_t limit) {
    const auto q = static_cast<float>(other * target) / static_cast<float>(target_other);
    return std::max<int64_t>(std::min<int64_t>(limit, static_cast<int64_t>(q)), 1);
  };
  CropBox box;
  box.height = crop(width, target_height, target_width, height);
  box.width = crop(height, target_width, target_height, width);
  box.top = static_cast<int64_t>(static_cast<float>(height - box.height) / 2.0F);
  box.left = static_cast<int64_t>(static_cast<float>(width - box.width) / 2.0F);
  return box;
}

void resize_image(const uint8_t* in,
                  int64_t in_height,
                  int64_t in_width,
                  int64_t row_stride,
                  int channels,
                  int64_t out_height,
                  int64_t out_width,
                  Interpolation interpolation,
                  float* out) {
  const int64_t c = channels;
  if (interpolation == Interpolation::kNearest) {
    const std::vector<int64_t> ys = nearest(out_height, in_height);
    const std::vector<int64_t> xs = nearest(out_width, in_width);
    for (int64_t y = 0; y < out_height; ++y) {
      const uint8_t* row = in + ys[static_cast<size_t>(y)] * row_stride;
      for (int64_t x = 0; x < out_width; ++x) {
        const uint8_t* pixel = row + xs[static_cast<size_t>(x)] * c;
        for (int64_t k = 0; k < c; ++k) {
          *out++ = static_cast<float>(pixel[k]);
        }
      }
    }
    return;
  }
  const std::vector<Lerp> ys = lerps(out_height, in_height);
  const std::vector<Lerp> xs = lerps(out_width, in_width);
  const int64_t row_out = out_width * c;
  // TF's compute_lerp lerps along x on the top and the bottom row, then
  // along y. A source row's lerp along x is the same for every output row
  // that reads it, so it is computed once per source row (the same float32
  // operations in the same order: the same values), kept in the slot of its
  // row's parity (an output row reads rows r and r + 1, or r twice), and
  // the lerp along y runs over whole rows.
  std::vector<float> slots(static_cast<size_t>(2 * row_out));
  int64_t held[2] = {-1, -1};
  const auto along_x = [&](int64_t source_row) -> const float* {
    const auto slot = static_cast<size_t>(source_row & 1);
    float* dst = slots.data() + slot * static_cast<size_t>(row_out);
    if (held[slot] != source_row) {
      held[slot] = source_row;
      const uint8_t* row = in + source_row * row_stride;
      for (int64_t x = 0; x < out_width; ++x) {
        const Lerp& lx = xs[static_cast<size_t>(x)];
        const uint8_t* left = row + lx.lower * c;
        const uint8_t* right = row + lx.upper * c;
        for (int64_t k = 0; k < c; ++k) {
          const auto l = static_cast<float>(left[k]);
          const auto r = static_cast<float>(right[k]);
          dst[x * c + k] = l + (r - l) * lx.lerp;
        }
      }
    }
    return dst;
  };
  for (int64_t y = 0; y < out_height; ++y) {
    const Lerp& ly = ys[static_cast<size_t>(y)];
    const float* top = along_x(ly.lower);
    const float* bottom = along_x(ly.upper);
    const float lerp = ly.lerp;
    for (int64_t i = 0; i < row_out; ++i) {
      out[i] = top[i] + (bottom[i] - top[i]) * lerp;
    }
    out += row_out;
  }
}

}  // namespace mnist
