// The layers' own CPU loops (see kernels.hpp). Spread over
// libtorch's threads with at::parallel_for (this file is compiled with
// OpenMP, as src/CMakeLists.txt says why), and compiled twice: for the
// baseline x86-64 and, called where the CPU has it, for AVX2. Each value
// takes the same IEEE operations in both (no fused multiply-add: ISO C++
// leaves it off), only more features at a time, so both give the same bits.
// float32 where that loses nothing that matters: x - mean is exact for the
// values near the mean (Sterbenz), and the statistics' sums are double but
// for partial sums of 8 rows.
#include "layers/kernels.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include <ATen/Parallel.h>

namespace mnist::layers::kernels {

namespace {

/// Rows per chunk of the sums: the chunks, not the threads, set the order of
/// the additions, so the result does not depend on the thread count.
constexpr int64_t kChunkRows = 256;

/// Rows whose shifted values and squares are summed in float32 before they
/// are added to the double sums: a float32 sum of 8 values is within a few
/// ulps, and the inner loop runs on 8 features at a time with AVX2.
constexpr int64_t kFloatRows = 8;

// clang-format off
/// Adds each feature's (x - shift) and its square over rows [begin, end) to
/// sum and squares, through float32 partial sums (partial: 2 * features).
#define MNIST_SUM_ROWS_BODY                                \
  for (int64_t r0 = begin; r0 < end; r0 += kFloatRows) {   \
    float* fsum = partial;                                 \
    float* fsquares = partial + features;                  \
    for (int64_t f = 0; f < features; ++f) {               \
      fsum[f] = 0.0F;                                      \
      fsquares[f] = 0.0F;                                  \
    }                                                      \
    const int64_t r1 = std::min(end, r0 + kFloatRows);     \
    for (int64_t r = r0; r < r1; ++r) {                    \
      const float* row = x + r * features;                 \
      for (int64_t f = 0; f < features; ++f) {             \
        const float d = row[f] - shift[f];                 \
        fsum[f] += d;                                      \
        fsquares[f] += d * d;                              \
      }                                                    \
    }                                                      \
    for (int64_t f = 0; f < features; ++f) {               \
      sum[f] += static_cast<double>(fsum[f]);              \
      squares[f] += static_cast<double>(fsquares[f]);      \
    }                                                      \
  }

/// y = (x - mean) * scale + offset over rows [begin, end), in float32; in
/// place (one pointer, so that the compiler's overlap check between x and y
/// does not send it to its scalar loop) where y is x.
#define MNIST_NORMALIZE_ROWS_BODY                              \
  if (x == y) {                                                \
    for (int64_t r = begin; r < end; ++r) {                    \
      float* row = y + r * features;                           \
      for (int64_t f = 0; f < features; ++f) {                 \
        row[f] = (row[f] - mean[f]) * scale[f] + offset[f];    \
      }                                                        \
    }                                                          \
    return;                                                    \
  }                                                            \
  for (int64_t r = begin; r < end; ++r) {                      \
    const float* row = x + r * features;                       \
    float* dst = y + r * features;                             \
    for (int64_t f = 0; f < features; ++f) {                   \
      dst[f] = (row[f] - mean[f]) * scale[f] + offset[f];      \
    }                                                          \
  }
// clang-format on

void sum_rows(const float* x,
              const float* shift,
              int64_t begin,
              int64_t end,
              int64_t features,
              float* partial,
              double* sum,
              double* squares) {
  MNIST_SUM_ROWS_BODY
}

__attribute__((target("avx2"))) void sum_rows_avx2(const float* x,
                                                   const float* shift,
                                                   int64_t begin,
                                                   int64_t end,
                                                   int64_t features,
                                                   float* partial,
                                                   double* sum,
                                                   double* squares) {
  MNIST_SUM_ROWS_BODY
}

void normalize_rows(const float* x,
                    int64_t begin,
                    int64_t end,
                    int64_t features,
                    const float* mean,
                    const float* scale,
                    const float* offset,
                    float* y) {
  MNIST_NORMALIZE_ROWS_BODY
}

__attribute__((target("avx2"))) void normalize_rows_avx2(const float* x,
                                                         int64_t begin,
                                                         int64_t end,
                                                         int64_t features,
                                                         const float* mean,
                                                         const float* scale,
                                                         const float* offset,
                                                         float* y) {
  MNIST_NORMALIZE_ROWS_BODY
}

bool has_avx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}

}  // namespace

void batch_moments(const float* x, int64_t rows, int64_t features, float* mean, float* variance) {
  // One pass: each feature's values shifted by its first row's, so the
  // variance (the mean square less the squared mean) loses no digits to a
  // mean far from 0.
  const int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  const float* shift = x;
  std::vector<double> partial(static_cast<size_t>(chunks * 2 * features), 0.0);
  const bool avx2 = has_avx2();
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(static_cast<size_t>(2 * features));
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      double* sum = partial.data() + chunk * 2 * features;
      const int64_t first = chunk * kChunkRows;
      const int64_t last = std::min(rows, first + kChunkRows);
      (avx2 ? sum_rows_avx2 : sum_rows)(x, shift, first, last, features, scratch.data(), sum,
                                        sum + features);
    }
  });
  const auto n = static_cast<double>(rows);
  for (int64_t f = 0; f < features; ++f) {
    double sum = 0.0;
    double squares = 0.0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      sum += partial[static_cast<size_t>(chunk * 2 * features + f)];
      squares += partial[static_cast<size_t>(chunk * 2 * features + features + f)];
    }
    const double centred = sum / n;
    const double v = squares / n - centred * centred;
    mean[f] = static_cast<float>(static_cast<double>(shift[f]) + centred);
    // Rounding can leave a constant feature's variance just below 0; a NaN
    // or infinite value leaves it NaN, as TF.js's moments are.
    variance[f] = static_cast<float>(v < 0.0 ? 0.0 : v);
  }
}

void batch_normalize(const float* x,
                     int64_t rows,
                     int64_t features,
                     const float* mean,
                     const float* scale,
                     const float* offset,
                     float* y) {
  const bool avx2 = has_avx2();
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / features),
                   [&](int64_t begin, int64_t end) {
                     (avx2 ? normalize_rows_avx2 : normalize_rows)(x, begin, end, features, mean,
                                                                   scale, offset, y);
                   });
}

void pad_nhwc(const float* x,
              int64_t n,
              int64_t h,
              int64_t w,
              int64_t c,
              int64_t top,
              int64_t bottom,
              int64_t left,
              int64_t right,
              float value,
              float* y) {
  // constant_pad_nd fills the whole output, then copies the input into it:
  // two passes over the output where one does.
  const int64_t oh = h + top + bottom;
  const int64_t row_values = (w + left + right) * c;
  at::parallel_for(0, n * oh, std::max<int64_t>(1, 16384 / row_values),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t out_row = begin; out_row < end; ++out_row) {
                       float* dst = y + out_row * row_values;
                       const int64_t in_row = out_row % oh - top;
                       if (in_row < 0 || in_row >= h) {
                         std::fill(dst, dst + row_values, value);
                         continue;
                       }
                       std::fill(dst, dst + left * c, value);
                       std::memcpy(dst + left * c, x + ((out_row / oh) * h + in_row) * w * c,
                                   static_cast<size_t>(w * c) * sizeof(float));
                       std::fill(dst + (left + w) * c, dst + row_values, value);
                     }
                   });
}

}  // namespace mnist::layers::kernels
