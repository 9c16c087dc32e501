// RMSprop exactly as TF.js's 'rmsprop' string optimizer computes it.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

namespace mnist {

/// tfjs-layers optimizers.ts maps 'rmsprop' to train.rmsprop(0.001, 0.9, 0,
/// epsilon()) with epsilon() = 1e-7. libtorch's RMSpropOptions defaults
/// differ (lr 1e-2, alpha 0.99, eps 1e-8 added outside the square root), so
/// the values are written out here.
struct RmsPropOptions {
  double learning_rate = 0.001;
  double rho = 0.9;       ///< TF.js "decay"
  double epsilon = 1e-7;  ///< inside the square root, as TF.js has it
};

/// Plain RMSprop (momentum 0, not centred), per tfjs-core
/// rmsprop_optimizer.ts:
///   ms = rho * ms + (1 - rho) * g^2
///   w -= lr * g / sqrt(ms + epsilon)
/// The mean squares start at zero and live on the parameters' device, in
/// float32 whatever the compute precision.
class RmsProp {
 public:
  RmsProp(std::vector<at::Tensor> params, const RmsPropOptions& options);

  /// Applies one update from the gradients in each parameter's .grad().
  /// Parameters without a gradient are left alone.
  void step();

  /// Drops the gradients (sets them undefined, so the next backward pass
  /// writes them instead of accumulating).
  void zero_grad();

  /// The running mean squares, one per parameter, in parameter order.
  const std::vector<at::Tensor>& mean_squares() const { return mean_squares_; }

  /// Restores saved mean squares (same count and shapes as the parameters);
  /// throws ConfigError otherwise.
  void load_mean_squares(const std::vector<at::Tensor>& saved);
  const RmsPropOptions& options() const { return options_; }

 private:
  std::vector<at::Tensor> params_;
  std::vector<at::Tensor> mean_squares_;
  RmsPropOptions options_;
};

}  // namespace mnist
