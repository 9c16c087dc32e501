// BatchNormalization's fused loops (batch_norm_kernels.cpp): the batch
// statistics and the normalisation of float32 values laid out
// [rows, features] in memory, for normalization.cpp's path without
// gradients. Private to the layers module.
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

}  // namespace mnist::layers::kernels
