// Evaluation: loss and accuracy of a model on a dataset, as TF.js's
// model.evaluate() reports them, plus the confusion matrix.
#pragma once

#include <cstdint>
#include <vector>

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

/// What a score is where its denominator is 0 (a class never predicted has
/// no precision; one with no images no recall; one neither predicted nor
/// present no F1): 0, the value scikit-learn's classification_report gives
/// with its default zero_division ("warn": 0 and a warning). Such scores are
/// flagged, so that a report can say which ones they are.
constexpr double kZeroDivision = 0.0;

/// One class's scores, or an average of them (docs/design.md, "Evaluation").
struct ClassScores {
  double precision = 0.0;            ///< tp / (tp + fp): of the images predicted as the class
  double recall = 0.0;               ///< tp / (tp + fn): of the class's images (its accuracy)
  double f1 = 0.0;                   ///< 2 tp / (2 tp + fp + fn), their harmonic mean
  int64_t support = 0;               ///< images of the class (an average: all images)
  bool precision_undefined = false;  ///< tp + fp == 0: precision is kZeroDivision
  bool recall_undefined = false;     ///< tp + fn == 0: recall is kZeroDivision
  bool f1_undefined = false;         ///< tp + fp + fn == 0: f1 is kZeroDivision

  bool any_undefined() const { return precision_undefined || recall_undefined || f1_undefined; }
};

/// scikit-learn's classification_report from a confusion matrix: every
/// class, and the two averages it prints below them. (Its third line,
/// "accuracy", is EvalResult::accuracy: with every image in one of the K
/// classes, micro-averaged precision, recall and F1 all equal it.)
struct ClassMetrics {
  std::vector<ClassScores> per_class;  ///< one per row of the matrix
  /// The unweighted mean of each score over all K classes (those with no
  /// images too, at kZeroDivision), as average='macro'.
  ClassScores macro_avg;
  /// Each score's mean weighted by support, as average='weighted'
  /// (kZeroDivision, flagged, when there are no images at all).
  ClassScores weighted_avg;
};

/// Precision, recall, F1 and support of each class of `confusion` ([K,K]
/// integer counts, [true label][predicted], as EvalResult::confusion), as
/// scikit-learn's precision_recall_fscore_support computes them (F1 from the
/// counts, 2 tp / (2 tp + fp + fn), so that it is defined whenever the class
/// was present or predicted), and their averages. Throws DataError when
/// `confusion` is not a square matrix of counts >= 0.
ClassMetrics per_class_metrics(const at::Tensor& confusion);

}  // namespace mnist
