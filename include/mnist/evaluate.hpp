// Evaluation: loss and accuracy of a model on a dataset, as TF.js's
// model.evaluate() reports them, plus the confusion matrix.
#pragma once

#include <cstdint>

#include <ATen/core/Reduction.h>

#include "mnist/data.hpp"
#include "mnist/device.hpp"
#include "mnist/model.hpp"

namespace mnist {

/// The batch size of every evaluation pass (validation during training,
/// the test set, predictions): large enough to keep the cores busy, small
/// enough for the allocator's cache (docs/performance.md: batch 256 runs
/// much faster than 1000 on the CPU).
constexpr int64_t kEvalBatchSize = 256;

struct EvalResult {
  double loss = 0.0;      ///< mean categorical cross-entropy
  double accuracy = 0.0;  ///< fraction of argmax == label
  int64_t count = 0;      ///< number of images evaluated
  at::Tensor confusion;  ///< [K,K] int64 on the CPU: [true label][predicted], K the model's outputs
};

/// TF.js's categoricalCrossentropy on a softmax output, from the logits before
/// it: per image -log(clip(p_label, 1e-7, 1 - 1e-7)) (tfjs-layers losses.ts
/// clips the probabilities to [epsilon, 1 - epsilon]), so an image whose
/// label gets less than 1e-7 adds log(1e7) = 16.1 at most, and a clipped
/// image adds no gradient. Computed as log_softmax clamped in the log domain:
/// where nothing is clipped its gradient is libtorch's cross_entropy's, bit
/// for bit (the value differs in rounding only).
/// `reduction`: at::Reduction::Mean or Sum, or None: [N], per image.
at::Tensor tfjs_categorical_crossentropy(const at::Tensor& logits,
                                         const at::Tensor& labels,
                                         int64_t reduction = at::Reduction::Mean);

/// Evaluates with dropout off and no gradients, in batches of `batch_size`,
/// on the model's device, in `precision`. An empty dataset gives NaN loss
/// and accuracy.
EvalResult evaluate(Model& model,
                    const Dataset& data,
                    int64_t batch_size,
                    Precision precision = Precision::kFloat32);

/// Per-class accuracy [K] double from a confusion matrix (NaN for a class
/// with no images).
at::Tensor per_class_accuracy(const at::Tensor& confusion);

}  // namespace mnist
