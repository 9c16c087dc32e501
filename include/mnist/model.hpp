// The mnist-node "enhanced" convnet, layer for layer, with TF.js's layer
// names, initialisers and summary table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace mnist {

/// One row of the model table in mission.md, as TF.js names and reports it.
struct LayerSpec {
  std::string name;        ///< e.g. "conv2d_Conv2D1"
  std::string class_name;  ///< e.g. "Conv2D"
  std::vector<int64_t> input_shape;   ///< without the batch dimension, NHWC
  std::vector<int64_t> output_shape;  ///< without the batch dimension, NHWC
  int64_t params = 0;
};

/// The eleven layers of the model, in order.
const std::vector<LayerSpec>& layer_specs();

/// conv 32 → conv 32 → maxpool → conv 64 → conv 64 → maxpool → flatten →
/// dropout 0.25 → dense 512 → dropout 0.5 → dense 10 (softmax).
class ConvNetImpl : public torch::nn::Module {
 public:
  ConvNetImpl();

  /// [N,1,28,28] float32 in [0,1] (any memory format) → [N,10] logits.
  /// The softmax of TF.js's last layer is left to the loss and to
  /// predict_proba(), which is numerically safer.
  at::Tensor forward(at::Tensor x);

  /// Redraws every weight the way TF.js initialises it: kernels with Glorot
  /// normal (std sqrt(2 / (fan_in + fan_out)), values beyond 2 std redrawn),
  /// biases zero. Uses libtorch's global generator (torch::manual_seed).
  void reset_tfjs();

  /// The TF.js weight name of each parameter, in manifest order, with the
  /// libtorch tensor it maps to. Kernels are in libtorch layout.
  std::vector<std::pair<std::string, at::Tensor>> tfjs_weights() const;

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr},
      conv4{nullptr};
  torch::nn::Linear dense1{nullptr}, dense2{nullptr};
};
TORCH_MODULE(ConvNet);

constexpr double kDropout1Rate = 0.25;
constexpr double kDropout2Rate = 0.5;

/// Number of parameters (594,922 for this model).
int64_t count_params(const ConvNet& model);

/// The summary table exactly as TF.js's model.summary() prints it.
std::string summary_text();

/// Glorot-normal truncated at 2 std, in place (TF.js's VarianceScaling with
/// scale 1, mode fan_avg, distribution normal).
void glorot_normal_truncated_(at::Tensor weight, int64_t fan_in, int64_t fan_out);

/// Softmax probabilities [N,10] for [N,1,28,28] images, computed in batches
/// with dropout off and no gradients. Returns on the images' device.
at::Tensor predict_proba(ConvNet& model, at::Tensor images, int64_t batch_size);

}  // namespace mnist
