// Checks shared by the commands that run a loaded model.
#pragma once

#include <string>

#include "mnist/error.hpp"
#include "mnist/idx.hpp"
#include "mnist/model.hpp"

namespace mnist::cli {

/// Throws ConfigError unless `model` outputs 10 class probabilities.
inline void require_classifier(const Model& model, const std::string& origin) {
  const auto& out = model->spec().layers.back().output_shape;
  if (out.size() != 1 || out[0] != kNumClasses || !model->ends_in_softmax()) {
    throw ConfigError(origin + ": the model must end in a 10-unit softmax to classify MNIST "
                      "digits");
  }
}

}  // namespace mnist::cli
