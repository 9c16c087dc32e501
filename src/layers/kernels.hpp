// The layers' own CPU loops (kernels.cpp), for calls that want no gradient:
// BatchNormalization's batch statistics and normalisation of float32 values
// laid out [rows, features] in memory (normalization.cpp), and zero padding
// of a channels-last batch (pad_hw). Private to the layers module.
#pragma once

#include <cstdint>

namespace mnist::layers::kernels {

/// Each feature's mean and biased variance over `rows` rows of x, as
/// tf.moments computes them (its CPU backend sums in double, as these sums
/// are but for partial sums of 8 rows), into mean[features] and
/// variance[features].
void batch_moments(const float* x, int64_t rows, int64_t features, float* mean, float* variance);

/// y = (x - mean) * scale + offset per feature in float32, over `rows` rows
/// of x into y (mean, scale and offset: [features]); y may be x.
void batch_normalize(const float* x,
                     int64_t rows,
                     int64_t features,
                     const float* mean,
                     const float* scale,
                     const float* offset,
                     float* y);

/// y [n][h + top + bottom][w + left + right][c] = x [n][h][w][c] with `value`
/// around it (float32, NHWC in memory): each output row written once.
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
              float* y);

}  // namespace mnist::layers::kernels
