// The AVX2 + FMA loops of the Winograd convolution (see winograd.hpp): tile
// transforms on 8 channels at a time, the small matrix products, and the
// forward and backward passes over chunks of whole images. Called only
// after cpu_supported(): every function here is compiled for AVX2.
#include "onednn/winograd_kernels.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include <ATen/Parallel.h>

namespace mnist::winograd {

namespace {

#define MNIST_AVX2 __attribute__((target("avx2,fma")))

// ---- 1-D transforms on 8 channels at a time ---------------------------------

/// B^T (6x6) times a column of 6 vectors.
MNIST_AVX2 inline void bt6(const __m256* i, __m256* o) {
  const __m256 four = _mm256_set1_ps(4.0F), five = _mm256_set1_ps(5.0F), two = _mm256_set1_ps(2.0F);
  o[0] = _mm256_add_ps(_mm256_fnmadd_ps(five, i[2], _mm256_mul_ps(four, i[0])), i[4]);
  o[1] = _mm256_fnmadd_ps(four, _mm256_add_ps(i[1], i[2]), _mm256_add_ps(i[3], i[4]));
  o[2] = _mm256_fmadd_ps(four, _mm256_sub_ps(i[1], i[2]), _mm256_sub_ps(i[4], i[3]));
  o[3] = _mm256_fmadd_ps(two, _mm256_sub_ps(i[3], i[1]), _mm256_sub_ps(i[4], i[2]));
  o[4] = _mm256_fnmadd_ps(two, _mm256_sub_ps(i[3], i[1]), _mm256_sub_ps(i[4], i[2]));
  o[5] = _mm256_add_ps(_mm256_fnmadd_ps(five, i[3], _mm256_mul_ps(four, i[1])), i[5]);
}

/// B (6x6) times a column of 6 vectors (the gradient of bt6).
MNIST_AVX2 inline void b6(const __m256* i, __m256* o) {
  const __m256 four = _mm256_set1_ps(4.0F), five = _mm256_set1_ps(5.0F), two = _mm256_set1_ps(2.0F);
  const __m256 d12 = _mm256_sub_ps(i[2], i[1]), d34 = _mm256_sub_ps(i[3], i[4]);
  o[0] = _mm256_mul_ps(four, i[0]);
  o[1] = _mm256_fmadd_ps(four, _mm256_add_ps(d12, i[5]), _mm256_mul_ps(_mm256_set1_ps(-2.0F), d34));
  o[2] = _mm256_sub_ps(
      _mm256_fnmadd_ps(four, _mm256_add_ps(i[1], i[2]), _mm256_mul_ps(_mm256_set1_ps(-5.0F), i[0])),
      _mm256_add_ps(i[3], i[4]));
  o[3] = _mm256_fnmadd_ps(five, i[5], _mm256_fmadd_ps(two, d34, _mm256_sub_ps(i[1], i[2])));
  o[4] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(i[0], i[1]), _mm256_add_ps(i[2], i[3])), i[4]);
  o[5] = i[5];
}

/// A^T (4x6) times a column of 6 vectors.
MNIST_AVX2 inline void at4(const __m256* i, __m256* o) {
  const __m256 s12 = _mm256_add_ps(i[1], i[2]), d12 = _mm256_sub_ps(i[1], i[2]);
  const __m256 s34 = _mm256_add_ps(i[3], i[4]), d34 = _mm256_sub_ps(i[3], i[4]);
  o[0] = _mm256_add_ps(_mm256_add_ps(i[0], s12), s34);
  o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0F), d34, d12);
  o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0F), s34, s12);
  o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0F), d34, d12), i[5]);
}

/// A (6x4) times a column of 4 vectors (the gradient of at4).
MNIST_AVX2 inline void a6(const __m256* i, __m256* o) {
  const __m256 s02 = _mm256_add_ps(i[0], i[2]), s13 = _mm256_add_ps(i[1], i[3]);
  const __m256 q02 = _mm256_fmadd_ps(_mm256_set1_ps(4.0F), i[2], i[0]);
  const __m256 q13 = _mm256_fmadd_ps(_mm256_set1_ps(8.0F), i[3], _mm256_add_ps(i[1], i[1]));
  o[0] = i[0];
  o[1] = _mm256_add_ps(s02, s13);
  o[2] = _mm256_sub_ps(s02, s13);
  o[3] = _mm256_add_ps(q02, q13);
  o[4] = _mm256_sub_ps(q02, q13);
  o[5] = i[3];
}

// ---- Tiles ------------------------------------------------------------------

/// Where tile `t` (0-based, over the whole batch) sits.
struct TileAt {
  int64_t image, y0, x0;  ///< output origin (y0, x0)
};
TileAt tile_at(const Shape& s, int64_t t) {
  const int64_t per = s.tiles_per_image();
  const int64_t in_image = t % per;
  return {t / per, (in_image / s.tiles_x()) * kTile, (in_image % s.tiles_x()) * kTile};
}

/// Zeroes rows [rows, stride) of each point's (stride x width) matrix.
void zero_padding(float* m, int64_t rows, int64_t stride, int64_t width) {
  for (int64_t p = 0; p < kPoints; ++p) {
    std::fill(m + (p * stride + rows) * width, m + (p + 1) * stride * width, 0.0F);
  }
}

/// Row `r` of each point's (stride x width) matrix, channels c0..c0+8, as
/// 6x6 tile transposed: col[j][i] = point (i, j).
MNIST_AVX2 inline void load_points(
    const float* m, int64_t stride, int64_t r, int64_t width, int64_t c0, __m256 (&col)[6][6]) {
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 6; ++j) {
      col[j][i] = _mm256_loadu_ps(m + ((i * 6 + j) * stride + r) * width + c0);
    }
  }
}

/// V = B^T d B for `rows` tiles from `first`, input x [n][h][w][c]: into
/// v[point][row][c] (rows*c floats per point).
MNIST_AVX2 void input_transform(
    const Shape& s, const float* x, int64_t first, int64_t rows, int64_t stride, float* v) {
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t r = 0; r < rows; ++r) {
    const TileAt at = tile_at(s, first + r);
    const int64_t iy0 = at.y0 - s.pad_h, ix0 = at.x0 - s.pad_w;
    for (int64_t c0 = 0; c0 < s.c; c0 += 8) {
      __m256 d[6][6], t[6][6];
      for (int i = 0; i < 6; ++i) {
        const int64_t iy = iy0 + i;
        for (int j = 0; j < 6; ++j) {
          const int64_t ix = ix0 + j;
          d[j][i] = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w
                        ? _mm256_loadu_ps(x + ((at.image * s.h + iy) * s.w + ix) * s.c + c0)
                        : zero;  // d[column][row]
        }
      }
      for (int j = 0; j < 6; ++j) {
        bt6(d[j], t[j]);  // t[j][i] = (B^T d)[i][j]
      }
      for (int i = 0; i < 6; ++i) {
        __m256 row[6], out[6];
        for (int j = 0; j < 6; ++j) {
          row[j] = t[j][i];
        }
        bt6(row, out);  // (B^T d B)[i][k]
        for (int k = 0; k < 6; ++k) {
          _mm256_storeu_ps(v + ((i * 6 + k) * stride + r) * s.c + c0, out[k]);
        }
      }
    }
  }
}

/// Y = A^T M A (+ bias, ReLU) for `rows` tiles from `first`: m[point][row][o]
/// into y [n][oh][ow][o], pixels outside the output dropped.
MNIST_AVX2 void output_transform(const Shape& s,
                                 const float* m,
                                 const float* bias,
                                 bool relu,
                                 int64_t first,
                                 int64_t rows,
                                 int64_t stride,
                                 float* y) {
  const int64_t oh = s.oh(), ow = s.ow();
  for (int64_t r = 0; r < rows; ++r) {
    const TileAt at = tile_at(s, first + r);
    for (int64_t o0 = 0; o0 < s.o; o0 += 8) {
      __m256 col[6][6], t[6][4];  // col[j][i] = M[i][j]
      load_points(m, stride, r, s.o, o0, col);
      for (int j = 0; j < 6; ++j) {
        at4(col[j], t[j]);  // t[j][a] = (A^T M)[a][j]
      }
      const __m256 b = bias != nullptr ? _mm256_loadu_ps(bias + o0) : _mm256_setzero_ps();
      for (int a = 0; a < 4; ++a) {
        const int64_t oy = at.y0 + a;
        __m256 row[6], out[4];
        for (int j = 0; j < 6; ++j) {
          row[j] = t[j][a];
        }
        at4(row, out);  // (A^T M A)[a][b]
        for (int q = 0; q < 4; ++q) {
          const int64_t ox = at.x0 + q;
          if (oy < oh && ox < ow) {
            __m256 value = _mm256_add_ps(out[q], b);
            if (relu) {
              value = _mm256_max_ps(value, _mm256_setzero_ps());
            }
            _mm256_storeu_ps(y + ((at.image * oh + oy) * ow + ox) * s.o + o0, value);
          }
        }
      }
    }
  }
}

/// dM = A dY A^T for `rows` tiles from `first`, dY [n][oh][ow][o] masked by
/// ReLU's gradient where `y` (the forward output) is given; into
/// dm[point][row][o]. Adds the masked dY to dbias[o] when given.
MNIST_AVX2 void grad_output_transform(const Shape& s,
                                      const float* dy,
                                      const float* y,
                                      int64_t first,
                                      int64_t rows,
                                      int64_t stride,
                                      float* dm,
                                      float* dbias) {
  const int64_t oh = s.oh(), ow = s.ow();
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t r = 0; r < rows; ++r) {
    const TileAt at = tile_at(s, first + r);
    for (int64_t o0 = 0; o0 < s.o; o0 += 8) {
      __m256 col[4][4], t[4][6], sum = zero;  // col[q][a] = dY[a][q]
      for (int a = 0; a < 4; ++a) {
        for (int q = 0; q < 4; ++q) {
          const int64_t oy = at.y0 + a, ox = at.x0 + q;
          __m256 g = zero;
          if (oy < oh && ox < ow) {
            const int64_t at_pixel = ((at.image * oh + oy) * ow + ox) * s.o + o0;
            g = _mm256_loadu_ps(dy + at_pixel);
            if (y != nullptr) {
              g = _mm256_and_ps(g, _mm256_cmp_ps(_mm256_loadu_ps(y + at_pixel), zero, _CMP_GT_OQ));
            }
          }
          col[q][a] = g;
          sum = _mm256_add_ps(sum, g);
        }
      }
      if (dbias != nullptr) {
        _mm256_storeu_ps(dbias + o0, _mm256_add_ps(_mm256_loadu_ps(dbias + o0), sum));
      }
      for (int q = 0; q < 4; ++q) {
        a6(col[q], t[q]);  // t[q][i] = (A dY)[i][q]
      }
      for (int i = 0; i < 6; ++i) {
        __m256 row[4], out[6];
        for (int q = 0; q < 4; ++q) {
          row[q] = t[q][i];
        }
        a6(row, out);  // (A dY A^T)[i][j]
        for (int j = 0; j < 6; ++j) {
          _mm256_storeu_ps(dm + ((i * 6 + j) * stride + r) * s.o + o0, out[j]);
        }
      }
    }
  }
}

/// dd = B dV B^T for `rows` tiles from `first`, dv[point][row][c], added
/// into dx [n][h][w][c] where the tile's input pixels lie inside it.
MNIST_AVX2 void grad_input_transform(
    const Shape& s, const float* dv, int64_t first, int64_t rows, int64_t stride, float* dx) {
  for (int64_t r = 0; r < rows; ++r) {
    const TileAt at = tile_at(s, first + r);
    const int64_t iy0 = at.y0 - s.pad_h, ix0 = at.x0 - s.pad_w;
    for (int64_t c0 = 0; c0 < s.c; c0 += 8) {
      __m256 col[6][6], t[6][6];  // col[k][i] = dV[i][k]
      load_points(dv, stride, r, s.c, c0, col);
      for (int k = 0; k < 6; ++k) {
        b6(col[k], t[k]);  // t[k][i] = (B dV)[i][k]
      }
      for (int i = 0; i < 6; ++i) {
        const int64_t iy = iy0 + i;
        if (iy < 0 || iy >= s.h) {
          continue;
        }
        __m256 row[6], out[6];
        for (int k = 0; k < 6; ++k) {
          row[k] = t[k][i];
        }
        b6(row, out);  // (B dV B^T)[i][j]
        for (int j = 0; j < 6; ++j) {
          const int64_t ix = ix0 + j;
          if (ix >= 0 && ix < s.w) {
            float* p = dx + ((at.image * s.h + iy) * s.w + ix) * s.c + c0;
            _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), out[j]));
          }
        }
      }
    }
  }
}

// ---- Small matrix products --------------------------------------------------

/// c[4 x 16] (row stride ldc) = (or +=) sum over k of A(i, k) b[k][0..16],
/// A(i, k) = a[i * lda_i + k * lda_k], b's rows ldb apart. Named
/// accumulators: in an array, GCC 12 stores them to the stack every step.
template <bool kAccumulate>
MNIST_AVX2 void micro_kernel(int64_t k_count,
                             const float* a,
                             int64_t lda_i,
                             int64_t lda_k,
                             const float* b,
                             int64_t ldb,
                             float* c,
                             int64_t ldc) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00;
  __m256 c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  if (kAccumulate) {
    c00 = _mm256_loadu_ps(c), c01 = _mm256_loadu_ps(c + 8);
    c10 = _mm256_loadu_ps(c + ldc), c11 = _mm256_loadu_ps(c + ldc + 8);
    c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
    c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
  }
  const float* a1 = a + lda_i;
  const float* a2 = a + 2 * lda_i;
  const float* a3 = a + 3 * lda_i;
  for (int64_t k = 0; k < k_count; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * ldb);
    const __m256 b1 = _mm256_loadu_ps(b + k * ldb + 8);
    const int64_t at = k * lda_k;
    __m256 x = _mm256_broadcast_ss(a + at);
    c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a1 + at);
    c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a2 + at);
    c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a3 + at);
    c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
  }
  _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
  _mm256_storeu_ps(c + ldc, c10), _mm256_storeu_ps(c + ldc + 8, c11);
  _mm256_storeu_ps(c + 2 * ldc, c20), _mm256_storeu_ps(c + 2 * ldc + 8, c21);
  _mm256_storeu_ps(c + 3 * ldc, c30), _mm256_storeu_ps(c + 3 * ldc + 8, c31);
}

/// C[m x n] (ldc n) = (or +=) A[m x k] B[k x n] (ldb n), m a multiple of 4
/// and n of 16, A(i, k) = a[i * lda_i + k * lda_k]: for each of the 36
/// points, whose matrices lie a_step, b_step and c_step floats apart.
template <bool kAccumulate>
MNIST_AVX2 void point_products(int64_t m,
                               int64_t n,
                               int64_t k,
                               const float* a,
                               int64_t lda_i,
                               int64_t lda_k,
                               int64_t a_step,
                               const float* b,
                               int64_t b_step,
                               float* c,
                               int64_t c_step) {
  for (int64_t p = 0; p < kPoints; ++p) {
    const float* ap = a + p * a_step;
    const float* bp = b + p * b_step;
    float* cp = c + p * c_step;
    for (int64_t i = 0; i < m; i += 4) {
      for (int64_t j = 0; j < n; j += 16) {
        micro_kernel<kAccumulate>(k, ap + i * lda_i, lda_i, lda_k, bp + j, n, cp + i * n + j, n);
      }
    }
  }
}

// ---- Passes -----------------------------------------------------------------

/// Calls fn(first_tile, rows, thread) for each chunk of whole images, in
/// parallel; chunks never share an image, so a chunk's writes into an image
/// (dx) never race with another's.
template <typename Fn>
void for_each_chunk(const Shape& s, const Fn& fn) {
  const int64_t per_chunk = s.images_per_chunk() * s.tiles_per_image();
  const int64_t tiles = s.n * s.tiles_per_image();
  at::parallel_for(0, s.chunks(), 1, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      const int64_t first = chunk * per_chunk;
      fn(first, std::min(per_chunk, tiles - first), at::get_thread_num());
    }
  });
}

/// A chunk's rows, rounded up to the 4 the matrix kernel takes at a time.
int64_t padded(int64_t rows) { return (rows + 3) / 4 * 4; }

}  // namespace

void forward_pass(
    const Shape& s, const float* x, const float* u, const float* bias, bool relu, float* y) {
  const int64_t most = padded(s.images_per_chunk() * s.tiles_per_image());
  std::vector<std::vector<float>> scratch(static_cast<size_t>(at::get_num_threads()));
  for_each_chunk(s, [&](int64_t first, int64_t rows, int thread) {
    std::vector<float>& buffer = scratch[static_cast<size_t>(thread)];
    buffer.resize(static_cast<size_t>(kPoints * most * (s.c + s.o)));
    const int64_t stride = padded(rows);
    float* v = buffer.data();
    float* m = v + kPoints * stride * s.c;
    input_transform(s, x, first, rows, stride, v);
    zero_padding(v, rows, stride, s.c);
    // M[p] (stride x o) = V[p] (stride x c) U[p] (c x o)
    point_products<false>(stride, s.o, s.c, v, s.c, 1, stride * s.c, u, s.c * s.o, m, stride * s.o);
    output_transform(s, m, bias, relu, first, rows, stride, y);
  });
}

void backward_pass(const Shape& s,
                   const float* x,
                   const float* u_t,
                   const float* y,
                   const float* dy,
                   float* dx,
                   float* du,
                   float* dbias) {
  const int64_t most = padded(s.images_per_chunk() * s.tiles_per_image());
  const auto threads = static_cast<size_t>(at::get_num_threads());
  std::vector<std::vector<float>> scratch(threads);
  // Per thread: the kernel's and the bias's gradient sums, added up after.
  std::vector<std::vector<float>> du_sum(threads), dbias_sum(threads);
  for_each_chunk(s, [&](int64_t first, int64_t rows, int thread) {
    const auto t = static_cast<size_t>(thread);
    std::vector<float>& buffer = scratch[t];
    buffer.resize(static_cast<size_t>(kPoints * most * (2 * s.c + s.o)));
    const int64_t stride = padded(rows);
    float* dm = buffer.data();
    float* v = dm + kPoints * stride * s.o;
    float* dv = v + kPoints * stride * s.c;
    if (dbias != nullptr && dbias_sum[t].empty()) {
      dbias_sum[t].assign(static_cast<size_t>(s.o), 0.0F);
    }
    grad_output_transform(s, dy, y, first, rows, stride, dm,
                          dbias != nullptr ? dbias_sum[t].data() : nullptr);
    zero_padding(dm, rows, stride, s.o);
    if (du != nullptr) {
      if (du_sum[t].empty()) {
        du_sum[t].assign(static_cast<size_t>(kPoints * s.c * s.o), 0.0F);
      }
      input_transform(s, x, first, rows, stride, v);
      // dU[p] (c x o) += V[p]^T (c x rows) dM[p] (rows x o)
      point_products<true>(s.c, s.o, rows, v, 1, s.c, stride * s.c, dm, stride * s.o,
                           du_sum[t].data(), s.c * s.o);
    }
    if (dx != nullptr) {
      // dV[p] (stride x c) = dM[p] (stride x o) U[p]^T (o x c)
      point_products<false>(stride, s.c, s.o, dm, s.o, 1, stride * s.o, u_t, s.o * s.c, dv,
                            stride * s.c);
      grad_input_transform(s, dv, first, rows, stride, dx);
    }
  });
  const auto add_up = [](const std::vector<std::vector<float>>& parts, float* out, int64_t size) {
    std::fill(out, out + size, 0.0F);
    for (const auto& part : parts) {
      for (size_t i = 0; i < part.size(); ++i) {
        out[i] += part[i];
      }
    }
  };
  if (du != nullptr) {
    add_up(du_sum, du, kPoints * s.c * s.o);
  }
  if (dbias != nullptr) {
    add_up(dbias_sum, dbias, s.o);
  }
}

}  // namespace mnist::winograd
