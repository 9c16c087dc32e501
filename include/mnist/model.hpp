// Models of registry layers (layers.hpp), Sequential or functional graphs,
// built from a spec (the mnist-node convnet, or a topology read from
// model.json), with TF.js's layer names, initialisers, manifest order and
// summary table.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json.hpp>

#include "mnist/layers.hpp"

namespace mnist {

/// One call of a layer in a functional model (a "node", as TF.js names it).
struct GraphNode {
  size_t layer = 0;  ///< its index in ModelSpec::layers
  /// The nodes (indices into Graph::nodes, each before this one) whose
  /// outputs are its inputs, in order; empty for the model's InputLayer,
  /// which takes the model's input.
  std::vector<size_t> inputs;
};

/// The layer graph of a functional model (TF.js's "Model", Keras's
/// "Functional"): one input, one output.
struct Graph {
  /// Every call of a layer, each after the nodes it takes inputs from; a
  /// layer's calls keep their order (its nodes 0, 1, ... in model.json). A
  /// layer called more than once shares its weights between its calls.
  std::vector<GraphNode> nodes;
  size_t output = 0;  ///< the node whose output is the model's
};

/// Each layer's calls in a graph as model.json numbers them: nodes_of[l]
/// the nodes of layer l in order, call_index[n] node n's place among its
/// layer's nodes.
struct GraphCalls {
  std::vector<std::vector<size_t>> nodes_of;
  std::vector<size_t> call_index;
};
GraphCalls graph_calls(const Graph& graph, size_t layers);

/// A model: its TF.js name, its input's shape, its layers and, for a
/// functional model, the graph that connects them.
struct ModelSpec {
  std::string name = "sequential_1";
  /// The model's input without the batch axis ([28,28,1] for MNIST).
  Shape input_shape = {28, 28, 1};
  std::vector<LayerPtr> layers;
  /// A functional model's graph (its first layer is its InputLayer); absent
  /// for a Sequential model, whose layers are called one after the other.
  std::optional<Graph> graph;
  /// model.json's "userDefinedMetadata" (TF.js keeps it: a LayersModel's
  /// getUserDefinedMetadata()); null when there is none. mnist-train writes
  /// {"dataset", "classNames"} there for a model of another dataset than
  /// MNIST (model_dataset()).
  nlohmann::ordered_json metadata;
};

/// One weight of a model: its TF.js name ("<layer>/<weight>"), its tensor
/// (libtorch layout) and how that layout maps onto TF.js's.
struct ModelWeight {
  std::string name;
  at::Tensor tensor;
  WeightLayout layout = WeightLayout::kVector;
};

/// The most weight values a model may hold (2^27: 134,217,728 parameters,
/// 512 MiB of float32), checked before any is made.
constexpr int64_t kMaxModelValues = int64_t{1} << 27;

/// Whether a new Model draws its weights with TF.js's initialisers, or leaves
/// them unset for a load to fill (load_tfjs fills every one or fails).
enum class WeightInit { kTfjs, kForLoad };

/// The mnist-node "enhanced" convnet (docs/design.md): conv 32, conv 32,
/// maxpool, conv 64, conv 64, maxpool, flatten, dropout 0.25, dense 512
/// relu, dropout 0.5, dense 10 softmax (594,922 parameters).
/// `with_dropout` false leaves out the two Dropout layers (the chapter's
/// exercise 3); the other layers keep their names. `classes`: the last
/// Dense layer's units (fewer for a model of some digits only, --labels).
ModelSpec mnist_node_spec(bool with_dropout = true, int64_t classes = 10);

/// A model on libtorch. Activations are NCHW (any memory format); Flatten
/// flattens in TF.js's NHWC order, so every weight keeps TF.js's meaning and
/// only kernel axes differ (see src/tfjs_io/layout.cpp).
class ModelImpl : public torch::nn::Module {
 public:
  /// Builds each layer for the shapes of its inputs (from spec.input_shape,
  /// through the graph's nodes, or one layer after the other), which checks
  /// it and fills in its shapes, and makes the weights it declares, in layer
  /// order. A layer called at several nodes must get the same input shapes
  /// at each. Throws FormatError naming the layer. `init` kTfjs draws the
  /// weights as TF.js does (reset_tfjs()); kForLoad leaves them for a load.
  explicit ModelImpl(ModelSpec spec, WeightInit init = WeightInit::kTfjs);

  /// Images [N,C,H,W] (float32 in [0,1]) of the model's input shape → the
  /// output before the model's final softmax (logits) when it ends in one,
  /// else the plain output. A model of flat input [n] takes images of n
  /// values, flattened in TF.js's NHWC order (input_mismatch checks).
  at::Tensor forward(at::Tensor x);

  /// The same, the model's own output (softmax applied if it ends in one),
  /// as TF.js's predict() returns it.
  at::Tensor predict(at::Tensor x);

  /// Whether the last layer applies softmax (needed to train with
  /// categorical cross-entropy).
  bool ends_in_softmax() const { return softmax_at_end_; }

  /// Whether any weight has an L1L2 regularizer (WeightSpec::penalty).
  bool regularized() const;
  /// The sum of every layer's regularizer penalties, as TF.js adds them to
  /// the training loss (frozen layers too): a float32 scalar on the
  /// weights' device, 0 for a model without regularizers.
  at::Tensor regularization_loss() const;

  /// Redraws every weight with its initializer (WeightSpec::initializer),
  /// layer after layer, weight after weight, as TF.js initialises them. Uses
  /// libtorch's global generator (torch::manual_seed).
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
  /// The same with each weight's layout (what the TF.js format's reader and
  /// writer convert by).
  std::vector<ModelWeight> manifest_weights() const;

  /// The weights of layer `index` (spec().layers[index]), in the order of
  /// weight_specs(index).
  const std::vector<at::Tensor>& layer_weights(size_t index) const { return weights_.at(index); }
  /// The weights layer `index` declared when it was built, in its order.
  const std::vector<WeightSpec>& weight_specs(size_t index) const {
    return weight_specs_.at(index);
  }

  /// The weight named as in tfjs_weights(); throws std::out_of_range.
  at::Tensor weight(const std::string& tfjs_name) const;

  const ModelSpec& spec() const { return spec_; }
  /// The calls of the layers: spec().graph, or for a Sequential model a
  /// chain of one node per layer.
  const Graph& graph() const { return graph_; }
  /// The input shapes and the output shape of node `node` of graph().
  const std::vector<Shape>& node_input_shapes(size_t node) const { return node_inputs_.at(node); }
  const Shape& node_output_shape(size_t node) const { return node_outputs_.at(node); }
  /// Whether graph() is a chain that TF.js's summary prints as it prints a
  /// Sequential model (tfjs-layers' isModelSequentialLike): each node takes
  /// one input, and no layer is called twice.
  bool sequential_like() const;
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
  /// The model's output for images `x` (the final softmax left out unless
  /// `final_softmax`), node after node.
  at::Tensor run(at::Tensor x, bool final_softmax);

  ModelSpec spec_;
  Graph graph_;
  std::vector<std::vector<Shape>> node_inputs_;
  std::vector<Shape> node_outputs_;
  /// Per node, the last node that reads its output (the node itself when
  /// none does): run() lets go of each output after its last reader.
  std::vector<size_t> last_reader_;
  /// Per layer, its weights in the order its build declared them.
  std::vector<std::vector<WeightSpec>> weight_specs_;
  std::vector<std::vector<at::Tensor>> weights_;
  bool softmax_at_end_ = false;
};
TORCH_MODULE(Model);

/// Why `model` cannot take images of `images` ([h,w,c], without the batch
/// axis), naming both shapes, or "" when it can: its input is [h,w,c], or
/// [h*w*c] (the images flattened, as TF.js users feed MNIST to a Dense
/// model).
std::string input_mismatch(const Model& model, const Shape& images);

/// Throws ConfigError with input_mismatch(model, shape of `images`) when it
/// is not "": `images` is [N,C,H,W].
void check_input(const Model& model, const at::Tensor& images);

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
