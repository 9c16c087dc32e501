// The layers of a TF.js Layers model, as one interface and a registry: a
// table from TF.js's class name ("Conv2D") to the code that reads that
// class's config. Each layer family has one source file under src/layers/,
// cut as tfjs-layers' own source is (core, convolutional, pooling,
// normalization, activations, reshaping, merge; container.cpp: a nested
// Sequential); docs/design.md, "A new layer", says what adding
// one takes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace mnist {

/// A tensor's shape without its batch axis: [h,w,c] for an image (NHWC, as
/// TF.js sees it), [n] for a flat input.
using Shape = std::vector<int64_t>;

/// A layer's shape with its batch axis, as TF.js prints it: "[null,12]".
std::string shape_text(const Shape& shape);

/// The activations TF.js 4.22 accepts in a layer's "activation" field
/// (tfjs-layers activations.ts), in the names it writes. Not "gelu_new":
/// TF.js 4.22 writes it but cannot read it back (it looks up "geluNew").
enum class Activation {
  kLinear,
  kRelu,
  kSoftmax,
  kSigmoid,
  kTanh,
  kElu,
  kSelu,
  kRelu6,
  kHardSigmoid,
  kSoftplus,
  kSoftsign,
  kSwish,
  kMish,
  kGelu,
  kLogSoftmax,
};

/// TF.js's name of an activation as model.json holds it ("relu",
/// "hard_sigmoid", ...).
const char* activation_name(Activation activation);

/// The activation a model.json names: TF.js's snake_case name, or the
/// camelCase one TF.js also reads ("hardSigmoid"); nullopt for none.
std::optional<Activation> parse_activation(const std::string& name);

/// Every activation name parse_activation takes, comma-separated.
std::string activation_names();

/// TF.js's L1L2 regularizer of one weight: l1 * sum(|w|) + l2 * sum(w^2),
/// added to the training loss (not to validation or test losses, as TF.js).
struct Penalty {
  double l1 = 0.0;
  double l2 = 0.0;
  bool any() const { return l1 != 0.0 || l2 != 0.0; }
};

/// How a weight's libtorch tensor maps onto TF.js's (src/tfjs_io/layout.cpp
/// converts): a convolution kernel [O,I,H,W] is TF.js's [H,W,I,O] (a
/// depthwise kernel is kept as [multiplier,in,H,W], so it is TF.js's
/// [H,W,in,multiplier]); a Dense kernel [out,in] is TF.js's [in,out];
/// kVector: the same in both (a vector, or a weight kept in TF.js's layout,
/// such as PReLU's alpha).
enum class WeightLayout { kVector, kDenseKernel, kConvKernel };

/// TF.js's initialisers of the layers here (tfjs-layers initializers.ts):
/// Glorot normal is VarianceScaling(1, fan_avg, normal), drawn truncated at 2
/// standard deviations; Glorot uniform is VarianceScaling(1, fan_avg,
/// uniform).
enum class Initializer { kZeros, kOnes, kConstant, kGlorotNormal, kGlorotUniform };

/// One weight of a layer, as the layer declares it when it is built.
struct WeightSpec {
  std::string name;  ///< TF.js's name after "<layer>/": "kernel", "bias", "gamma", ...
  Shape shape;       ///< in libtorch layout
  WeightLayout layout = WeightLayout::kVector;
  Initializer initializer = Initializer::kZeros;
  /// false: a statistic the layer updates itself (BatchNormalization's moving
  /// mean and variance), never a gradient, whatever the layer's `trainable`.
  bool gradient = true;
  Penalty penalty;     ///< its L1L2 regularizer (none by default)
  double value = 0.0;  ///< Initializer::kConstant's value
  /// A weight of a nested model's layer that is not trainable (the nested
  /// model itself may be): no gradient, listed with the non-trainable ones.
  bool frozen = false;
};

/// What a layer's call may depend on besides its inputs.
struct CallContext {
  bool training = false;  ///< fit's training mode (Dropout, BatchNormalization)
  /// The model's last layer is asked for its output before its softmax
  /// (logits, for the training loss); for every other layer false.
  bool logits = false;
};

/// One layer of a model: what tfjs-layers' class of the same name computes,
/// checks and saves. A layer is made from its TF.js config by the registry
/// (make_layer), then built by the Model for its input shapes, which fixes its
/// output shape and declares its weights; the Model owns the weights' tensors
/// and passes them to call() in the declared order.
class Layer {
 public:
  virtual ~Layer() = default;

  /// TF.js's class name: "Conv2D", "Dense", ...
  virtual const char* class_name() const = 0;
  virtual std::unique_ptr<Layer> clone() const = 0;

  /// Checks this layer against its input shapes and returns its output
  /// shape, declaring its weights in TF.js's order (that of the layer's
  /// model.weights). Throws FormatError without the layer's name (the Model
  /// adds it).
  virtual Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& weights) = 0;

  /// The layer's output for NCHW (or [N,features]) inputs, with the weights
  /// declared by build() in their order.
  virtual at::Tensor call(const std::vector<at::Tensor>& inputs,
                          const std::vector<at::Tensor>& weights,
                          const CallContext& context) const = 0;

  /// Writes TF.js 4.22's config keys of this class, in TF.js's order, into
  /// `config` (the Model's save adds "name" and "trainable" where the class
  /// does not place them itself).
  virtual void write_config(nlohmann::ordered_json& config) const = 0;

  /// Brings a config read from a model.json (Layer::config, saved again) up
  /// to date where it may lack what TF.js needs to load it again.
  virtual void refresh_config(nlohmann::ordered_json& /*saved*/) const {}

  /// Whether the layer's output is a softmax (its activation), which
  /// CallContext::logits leaves out.
  virtual bool ends_in_softmax() const { return false; }

  /// The TF.js name of weight `w` that it declared: "<layer>/<weight>"; a
  /// nested model's weights keep their own layers' names.
  virtual std::string weight_name(const WeightSpec& w) const { return name + "/" + w.name; }
  /// Sets `trainable` (a nested model's layers' too, as TF.js does).
  virtual void set_trainable(bool value) { trainable = value; }
  /// The calls TF.js counts for this layer before those of the model's
  /// graph: 1 for a nested Sequential whose first layer declares an input
  /// shape (TF.js calls it on that input when it is made), else 0.
  virtual size_t own_calls() const { return 0; }
  /// Whether the config TF.js saves for the class has "trainable" (not an
  /// InputLayer's or a nested model's).
  virtual bool has_trainable_field() const { return true; }

  std::string name;  ///< TF.js layer name, e.g. "conv2d_Conv2D1"
  /// TF.js's `trainable`: false freezes the layer's weights in training (they
  /// get no gradient, so no optimizer changes them).
  bool trainable = true;
  /// Why training would not do what TF.js does with this layer (a
  /// constraint, an activity or non-L1L2 regularizer in its config: not
  /// applied here), or "". Loading, predicting and saving are unaffected; a
  /// training refuses.
  std::string training_problem;
  /// The layer's TF.js config as read from a model.json (null for layers made
  /// here); written back on save.
  nlohmann::ordered_json config;
  Shape input_shape;   ///< set by the Model's build
  Shape output_shape;  ///< set by the Model's build

 protected:
  Layer() = default;
  Layer(const Layer&) = default;
  Layer& operator=(const Layer&) = default;
};

/// A layer held by a model spec: copied by cloning, so that a copied spec
/// (replace_head, a test's variations) never shares a layer with another.
class LayerPtr {
 public:
  LayerPtr() = default;
  LayerPtr(std::unique_ptr<Layer> layer) : layer_(std::move(layer)) {}  // NOLINT: implicit
  LayerPtr(const LayerPtr& other) : layer_(other.layer_ ? other.layer_->clone() : nullptr) {}
  LayerPtr(LayerPtr&&) noexcept = default;
  LayerPtr& operator=(const LayerPtr& other) {
    layer_ = other.layer_ ? other.layer_->clone() : nullptr;
    return *this;
  }
  LayerPtr& operator=(LayerPtr&&) noexcept = default;
  ~LayerPtr() = default;
  Layer* operator->() const { return layer_.get(); }
  Layer& operator*() const { return *layer_; }
  Layer* get() const { return layer_.get(); }

 private:
  std::unique_ptr<Layer> layer_;
};

/// The layer of TF.js class `class_name` from its config (every field read
/// and checked, as tfjs-layers' fromConfig reads it; "name" and "trainable"
/// too). Throws FormatError naming the field, without the layer (the caller
/// names the file and the layer), and for a class the registry lacks, listing
/// the ones it has.
LayerPtr make_layer(const std::string& class_name, const nlohmann::ordered_json& config);

/// The class names the registry has, in its table's order.
std::vector<std::string> layer_classes();

/// A Sequential model nested in a model as one layer (src/layers/
/// container.cpp): `layers` called one after the other; `own_input`, the
/// input shape its first layer declares, if any (it must then be called on
/// that shape). The TF.js reader makes it from the nested model's config
/// (the registry cannot: its layers need the reader).
LayerPtr make_nested_sequential(std::vector<LayerPtr> layers, std::optional<Shape> own_input);

/// The config a save writes for layer `l`: the one it was read with, brought
/// up to date (its `trainable`, refresh_config), or else TF.js 4.22's keys
/// (write_config, "name", "trainable").
nlohmann::ordered_json saved_config(const Layer& l);

/// Applies `activation` to `x`, NCHW or another rank in TF.js's order (softmax and
/// log-softmax along TF.js's last axis: NCHW's dim 1, another rank's last), in place
/// where it can (relu, sigmoid, tanh): `x` must be a tensor that nothing else reads.
at::Tensor activate(at::Tensor x, Activation activation);
/// The same, leaving `x` as it is (a layer's input, which other layers of a
/// graph may read).
at::Tensor activate_copy(const at::Tensor& x, Activation activation);

}  // namespace mnist
