// The Winograd convolution's loops (winograd_kernels.cpp, AVX2 + FMA) and
// the geometry they share with winograd.cpp. Private to the oneDNN module.
#pragma once

#include <algorithm>
#include <cstdint>

namespace mnist::winograd {

constexpr int64_t kTile = 4;           // output pixels per tile side
constexpr int64_t kPoints = 36;        // 6x6 transformed points per tile
constexpr int64_t kRowsPerChunk = 48;  // tiles a chunk aims at (whole images)

/// The geometry of one convolution.
struct Shape {
  int64_t n, c, h, w, o, pad_h, pad_w;
  int64_t oh() const { return h + 2 * pad_h - 2; }
  int64_t ow() const { return w + 2 * pad_w - 2; }
  int64_t tiles_y() const { return (oh() + kTile - 1) / kTile; }
  int64_t tiles_x() const { return (ow() + kTile - 1) / kTile; }
  int64_t tiles_per_image() const { return tiles_y() * tiles_x(); }
  int64_t images_per_chunk() const {
    return std::max<int64_t>(1, kRowsPerChunk / tiles_per_image());
  }
  int64_t chunks() const { return (n + images_per_chunk() - 1) / images_per_chunk(); }
};

/// Y = relu?(conv(x, g) + bias) from x [n][h][w][c] and u [36][c][o] (the
/// transformed kernel), into y [n][oh][ow][o]; bias may be null.
void forward_pass(
    const Shape& s, const float* x, const float* u, const float* bias, bool relu, float* y);

/// The gradients from dy [n][oh][ow][o] (masked by ReLU's where y, the
/// forward output, is given), x and u_t [36][o][c]: dx (zeroed, or null),
/// du [36][c][o] (or null), dbias [o] (or null).
void backward_pass(const Shape& s,
                   const float* x,
                   const float* u_t,
                   const float* y,
                   const float* dy,
                   float* dx,
                   float* du,
                   float* dbias);

}  // namespace mnist::winograd
