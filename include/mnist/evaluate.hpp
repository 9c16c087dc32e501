// Evaluation: loss and accuracy of a model on a dataset, as TF.js's
// model.evaluate() reports them.
#pragma once

#include <cstdint>

#include "mnist/data.hpp"
#include "mnist/model.hpp"

namespace mnist {

struct EvalResult {
  double loss = 0.0;      ///< mean categorical cross-entropy
  double accuracy = 0.0;  ///< fraction of argmax == label
  int64_t count = 0;      ///< number of images evaluated
};

/// Evaluates with dropout off and no gradients, in batches of `batch_size`,
/// on the model's device. An empty dataset gives NaN loss and accuracy.
EvalResult evaluate(ConvNet& model, const Dataset& data, int64_t batch_size);

}  // namespace mnist
