// Sequential models of the layers TF.js's MNIST examples use, built from a
// spec (the mnist-node convnet, or a topology read from model.json), with
// TF.js's layer names, initialisers and summary table.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json.hpp>

namespace mnist {

enum class LayerKind {
  kConv2D,
  kMaxPooling2D,
  kAveragePooling2D,
  kFlatten,
  kDropout,
  kDense,
  kActivation,
  kGlobalAveragePooling2D,
  kGlobalMaxPooling2D,
  kBatchNormalization,
  kDepthwiseConv2D,
  kSeparableConv2D,
};

enum class Activation { kLinear, kRelu, kSoftmax, kSigmoid, kTanh };

/// TF.js's L1L2 regularizer of one weight: l1 * sum(|w|) + l2 * sum(w^2),
/// added to the training loss (not to validation or test losses, as TF.js).
struct Penalty {
  double l1 = 0.0;
  double l2 = 0.0;
  bool any() const { return l1 != 0.0 || l2 != 0.0; }
};

/// One layer of a Sequential model, as TF.js describes it.
struct Layer {
  LayerKind kind = LayerKind::kFlatten;
  std::string name;  ///< TF.js layer name, e.g. "conv2d_Conv2D1"
  /// Conv2D and SeparableConv2D filters, Dense units (DepthwiseConv2D:
  /// its output channels, input channels * depth_multiplier, set by Model)
  int64_t units = 0;
  std::array<int64_t, 2> kernel{1, 1};  ///< convolution kernel or pooling window
  std::array<int64_t, 2> strides{1, 1};
  /// Conv2D and SeparableConv2D dilation_rate: kernel taps this far apart
  /// (a window of (kernel - 1) * dilation + 1); with strides 1 only, as in
  /// TF.js.
  std::array<int64_t, 2> dilation{1, 1};
  /// DepthwiseConv2D and SeparableConv2D: output channels per input channel
  /// of the depthwise step.
  int64_t depth_multiplier = 1;
  bool same_padding = false;  ///< TF "same" padding, else "valid"
  Activation activation = Activation::kLinear;
  bool use_bias = true;
  double rate = 0.0;  ///< Dropout rate
  // BatchNormalization (axis -1: the channels, or the features of a flat
  // input), TF.js's defaults.
  double momentum = 0.99;
  double epsilon = 1e-3;
  bool center = true;  ///< a beta (offset) weight
  bool scale = true;   ///< a gamma (scale) weight
  int64_t axis = -1;   ///< -1, or the index of the last axis (checked by Model)
  /// kernel_regularizer / bias_regularizer (BatchNormalization:
  /// gamma_regularizer / beta_regularizer; DepthwiseConv2D and
  /// SeparableConv2D: depthwise_regularizer / bias_regularizer), L1L2 only.
  Penalty kernel_penalty;
  Penalty bias_penalty;
  Penalty pointwise_penalty;  ///< SeparableConv2D's pointwise_regularizer
  /// Why training would not do what TF.js does with this layer (a
  /// constraint, an activity or non-L1L2 regularizer in its config: not
  /// applied here), or "".
  /// Loading, predicting and saving are unaffected; a training refuses.
  std::string training_problem;
  /// TF.js's `trainable`: false freezes the layer's weights in training
  /// (they get no gradient, so no optimizer changes them).
  bool trainable = true;
  /// The layer's TF.js config as read from a model.json (null for layers
  /// built here); written back unchanged on save.
  nlohmann::ordered_json config;
  std::vector<int64_t> input_shape;   ///< NHWC without batch; set by Model
  std::vector<int64_t> output_shape;  ///< NHWC without batch; set by Model
};

/// A Sequential model: its TF.js name and layers; the input is always
/// [null,28,28,1].
struct ModelSpec {
  std::string name = "sequential_1";
  std::vector<Layer> layers;
  /// model.json's "userDefinedMetadata" (TF.js keeps it: a LayersModel's
  /// getUserDefinedMetadata()); null when there is none. mnist-train writes
  /// {"dataset", "classNames"} there for a model of another dataset than
  /// MNIST (model_dataset()).
  nlohmann::ordered_json metadata;
};

/// A layer's shape with its batch axis, as TF.js prints it: "[null,12]".
std::string shape_text(const std::vector<int64_t>& shape);

/// TF.js's class name of a layer kind ("Conv2D", "Dense", ...).
const char* class_name(LayerKind kind);
/// TF.js's name of an activation ("relu", "softmax", ...).
const char* activation_name(Activation activation);

/// The mnist-node "enhanced" convnet (docs/design.md): conv 32, conv 32,
/// maxpool, conv 64, conv 64, maxpool, flatten, dropout 0.25, dense 512
/// relu, dropout 0.5, dense 10 softmax (594,922 parameters).
/// `with_dropout` false leaves out the two Dropout layers (the chapter's
/// exercise 3); the other layers keep their names. `classes`: the last
/// Dense layer's units (fewer for a model of some digits only, --labels).
ModelSpec mnist_node_spec(bool with_dropout = true, int64_t classes = 10);

/// A Sequential model on libtorch. Activations are NCHW (any memory
/// format); Flatten flattens in TF.js's NHWC order, so every weight keeps
/// TF.js's meaning and only kernel axes differ (see tfjs_io.cpp).
class ModelImpl : public torch::nn::Module {
 public:
  /// Checks the spec (shapes must work out from [28,28,1]; Dense needs a
  /// flat input; Conv2D and pooling need an image) and fills in each
  /// layer's shapes. Throws FormatError naming the layer. Initialises the
  /// weights as TF.js does (reset_tfjs()).
  explicit ModelImpl(ModelSpec spec);

  /// [N,1,28,28] float32 in [0,1] → the output before the model's final
  /// softmax (logits) when it ends in one, else the plain output.
  at::Tensor forward(at::Tensor x);

  /// [N,1,28,28] → the model's own output (softmax applied if it ends in
  /// one), as TF.js's predict() returns it.
  at::Tensor predict(at::Tensor x);

  /// Whether the last layer applies softmax (needed to train with
  /// categorical cross-entropy).
  bool ends_in_softmax() const { return softmax_at_end_; }

  /// Whether any layer has an L1L2 regularizer (Layer::kernel_penalty,
  /// bias_penalty).
  bool regularized() const;
  /// The sum of every layer's regularizer penalties, as TF.js adds them to
  /// the training loss (frozen layers too): a float32 scalar on the
  /// weights' device, 0 for a model without regularizers.
  at::Tensor regularization_loss() const;

  /// Redraws kernels with Glorot normal (std sqrt(2 / (fan_in + fan_out)),
  /// values beyond 2 std redrawn) and zeroes biases, as TF.js initialises
  /// them. Uses libtorch's global generator (torch::manual_seed).
  void reset_tfjs();

  /// Every weight in TF.js manifest order (model.weights: the trainable
  /// weights of all layers, then the non-trainable ones), named "<layer>/kernel" or
  /// "<layer>/bias" (BatchNormalization: "<layer>/gamma", "/beta",
  /// "/moving_mean", "/moving_variance"; DepthwiseConv2D:
  /// "/depthwise_kernel", "/bias"; SeparableConv2D: "/depthwise_kernel",
  /// "/pointwise_kernel", "/bias"; in those orders, as TF.js orders
  /// them), with its tensor in libtorch layout (conv [out,in,kh,kw], dense
  /// [out,in], depthwise [depth_multiplier,in,kh,kw], so that the one 4-D
  /// axis order gives TF.js's [kh,kw,in,depth_multiplier]). The moving
  /// statistics are parameters that never take a gradient: training updates
  /// them as TF.js does, and checkpoints keep them.
  std::vector<std::pair<std::string, at::Tensor>> tfjs_weights() const;

  /// The weight named as in tfjs_weights(); throws std::out_of_range.
  at::Tensor weight(const std::string& tfjs_name) const;

  const ModelSpec& spec() const { return spec_; }
  /// Replaces spec().metadata (written by the next save).
  void set_metadata(nlohmann::ordered_json metadata) { spec_.metadata = std::move(metadata); }

  /// The optimizer state a loaded model.json held (TF.js's model.save(...,
  /// {includeOptimizer: true})): the optimizer's class and config from
  /// "trainingConfig" (TF.js's "RMSProp", "Adam", ...; "" and null when
  /// absent) and the weights of the "optimizer" group by TF.js name:
  /// "iter" as an int64 scalar, "<weight>/<slot>" (e.g.
  /// "dense_Dense1/kernel/rms") in libtorch layout, like the weight; a slot
  /// of a weight the model does not have is left out. A training may
  /// continue from it (load_tfjs_state in optimizer.hpp).
  struct SavedOptimizer {
    std::string class_name;
    nlohmann::ordered_json config;
    std::vector<std::pair<std::string, at::Tensor>> weights;
    size_t count = 0;  ///< the group's entries, all of them
  };
  SavedOptimizer saved_optimizer;

  /// The device of the weights (CPU for a model without weights).
  c10::Device device() const;

  /// Sets layer `index`'s `trainable` (spec().layers[index], saved with
  /// the model) and whether its weights take gradients.
  void set_trainable(size_t index, bool trainable);

  /// The index of the layer that `name_or_index` names: a layer name, or a
  /// 0-based index as in TF.js's model.layers[i]. Throws ConfigError
  /// listing the layers when none matches.
  size_t layer_index(const std::string& name_or_index) const;

 private:
  at::Tensor apply(const Layer& layer, size_t index, at::Tensor x, bool final_softmax);
  at::Tensor batch_normalization(size_t index, const at::Tensor& x);
  at::Tensor depthwise(const Layer& layer, size_t index, const at::Tensor& x);

  ModelSpec spec_;
  std::vector<at::Tensor> kernels_;  ///< per layer; undefined if none
  /// SeparableConv2D's pointwise kernel [filters,in*depth_multiplier,1,1]
  /// (its depthwise kernel is in kernels_); undefined for other layers.
  std::vector<at::Tensor> pointwise_;
  std::vector<at::Tensor> biases_;  ///< per layer; undefined if none
  /// BatchNormalization's gamma is in kernels_, beta in biases_; these hold
  /// its moving mean and variance (undefined for other layers).
  std::vector<at::Tensor> moving_mean_;
  std::vector<at::Tensor> moving_variance_;
  bool softmax_at_end_ = false;
};
TORCH_MODULE(Model);

/// The units of the model's output when it is flat ([N,units]), else 0.
int64_t model_outputs(const Model& model);

/// Number of parameters (594,922 for the mnist-node convnet).
int64_t count_params(const Model& model);

/// Number of parameters in layers that are trainable (TF.js's summary
/// "Trainable params"); count_params minus it is "Non-trainable params".
int64_t count_trainable_params(const Model& model);

/// Freezes layers 0..layer_index(name_or_index) (`trainable` false), as
/// --freeze-up-to does; returns how many layers that is.
size_t freeze_up_to(Model& model, const std::string& name_or_index);

/// --replace-head: a copy of `model` whose last Dense layer has `units`
/// units, a new Glorot-normal kernel and zero bias (as reset_tfjs(), from
/// libtorch's global generator) and is trainable; its name, activation and
/// every other weight stay. The layers after it must have no weights
/// (Activation, Dropout). Throws ConfigError.
Model replace_head(const Model& model, int64_t units);

/// The summary table exactly as TF.js's model.summary() prints it.
std::string summary_text(const Model& model);

/// Glorot-normal truncated at 2 std, in place (TF.js's VarianceScaling with
/// scale 1, mode fan_avg, distribution normal).
void glorot_normal_truncated_(at::Tensor weight, int64_t fan_in, int64_t fan_out);

/// Copies every 4-D parameter into channels-last strides (including a
/// 1-input-channel kernel, which .contiguous(ChannelsLast) would leave as it
/// is: docs/performance.md, trap 4). oneDNN then keeps the whole net in NHWC,
/// its fast layout on the CPU.
void to_channels_last(Model& model);

/// Probabilities [N,10] for [N,1,28,28] images, computed in batches with
/// dropout off and no gradients. Returns on the images' device.
at::Tensor predict_proba(Model& model, at::Tensor images, int64_t batch_size);

}  // namespace mnist
