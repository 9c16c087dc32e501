// What the layer families share (private to src/layers/): reading a TF.js
// config's fields, checked, and TF's window arithmetic (same and valid
// padding) for convolutions and pooling.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "mnist/error.hpp"
#include "mnist/layers.hpp"

namespace mnist::layers {

using nlohmann::ordered_json;
using Pair = std::array<int64_t, 2>;

/// Throws FormatError(what): a field that does not work out.
[[noreturn]] void fail(const std::string& what);

/// The value of `key` in a JSON object, or nullptr when absent or null.
const ordered_json* find(const ordered_json& object, const char* key);

/// A non-negative integer field; `fallback` (if >= 0) when absent.
int64_t get_int(const ordered_json& c, const char* key, int64_t fallback = -1);
/// An int or a pair of ints ("kernel_size": 3 or [3,3]), each 1..4096;
/// `fallback` (if positive) when absent.
Pair get_pair(const ordered_json& c, const char* key, Pair fallback);
/// An int or a list of ints ("axis": -1 or [1,2]), as a list; `fallback`
/// when absent. Another type, or a list of fewer than `min_count` or more
/// than `max_count`, fails: the field "must be an integer or <list_text>"; a
/// list holding a non-integer: "... or a list of them".
std::vector<int64_t> get_axes(const ordered_json& c,
                              const char* key,
                              std::vector<int64_t> fallback,
                              size_t min_count = 0,
                              size_t max_count = SIZE_MAX,
                              const char* list_text = "a list of them");
/// A boolean field, `fallback` when absent or null.
bool get_bool(const ordered_json& c, const char* key, bool fallback);
/// A number field, `fallback` when absent or null.
double get_number(const ordered_json& c, const char* key, double fallback);
/// "padding": "same" (true) or "valid" (false, also when absent).
bool get_same_padding(const ordered_json& c);
/// "activation" (linear when absent).
Activation get_activation(const ordered_json& c);
/// Refuses a "data_format" other than "channels_last".
void require_channels_last(const ordered_json& c);

/// Reads the layer's "*_regularizer" and "*_constraint" fields: an L1L2
/// regularizer of a key in `keys` ({config key, weight name}) becomes that
/// weight's entry in `penalties`; any other one (a constraint, an activity
/// regularizer, another class) is kept as the layer's training_problem.
void read_regularizers(const ordered_json& c,
                       const std::vector<std::pair<const char*, const char*>>& keys,
                       std::vector<std::pair<std::string, Penalty>>& penalties,
                       std::string& training_problem);
/// The penalty of weight `name` in `penalties` (none if absent).
Penalty penalty_of(const std::vector<std::pair<std::string, Penalty>>& penalties,
                   const std::string& name);

/// Glorot normal (TF.js's Conv2D and Dense default) or uniform, as TF.js
/// writes the initializer in a config.
ordered_json variance_scaling(const char* distribution = "normal");
ordered_json zeros_initializer();
ordered_json ones_initializer();

/// "[a,b]".
std::string pair_text(const Pair& pair);

/// TF's output size and (before, after) padding along one axis.
struct AxisPlan {
  int64_t out = 0;
  int64_t pad_before = 0;
  int64_t pad_after = 0;
};

/// A convolution's or pooling layer's window: size, strides, dilation (1
/// for pooling) and TF's padding.
struct Window {
  Pair size{1, 1};
  Pair strides{1, 1};
  Pair dilation{1, 1};
  bool same = false;
  /// The (rows, columns) plans of the window on a height x width input.
  std::pair<AxisPlan, AxisPlan> plan(int64_t height, int64_t width) const;
  /// Checks the window against an image input shape [h,w,c] (throws) and
  /// returns its output's height and width.
  Pair output_size(const Shape& input) const;
};

/// Refuses a non-image input ("needs an image input [h,w,c], got ...").
void require_image(const Shape& input);

/// Pads H and W of an NCHW tensor by (before, after) per axis with `value`.
at::Tensor pad_hw(const at::Tensor& x, const AxisPlan& h, const AxisPlan& w, double value);
/// The same by (top, bottom, left, right); a negative one crops.
at::Tensor pad_image(
    const at::Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right, double value);

/// A tensor of the model's internal layout in TF.js's axis order (an NCHW
/// image as NHWC; other ranks are in TF.js's order already), and back.
inline at::Tensor to_tfjs_order(const at::Tensor& x) {
  return x.dim() == 4 ? x.permute({0, 2, 3, 1}) : x;
}
inline at::Tensor from_tfjs_order(const at::Tensor& x) {
  return x.dim() == 4 ? x.permute({0, 3, 1, 2}) : x;
}

/// Whether a layer with no gradient wanted may overwrite its input: no other
/// tensor, view or autograd record holds it or its memory (the model's
/// graph drops each value after its last reader, so a value read by one
/// layer only reaches it alone). Its caller's own tensors never are.
inline bool overwritable(const at::Tensor& x) {
  return x.defined() && x.use_count() == 1 && x.has_storage() && x.storage().use_count() == 1 &&
         !x.requires_grad() && !x.is_inference();
}

/// The single input of a one-input layer (throws if there are several).
const Shape& single(const std::vector<Shape>& inputs);

/// A layer class of the registry: its TF.js class name and the code that
/// makes it from its config.
struct LayerClass {
  const char* name;
  std::unique_ptr<Layer> (*make)(const ordered_json& config);
};

// Each family's classes (one source file each), in the registry's order.
std::vector<LayerClass> convolutional_layers();
std::vector<LayerClass> pooling_layers();
std::vector<LayerClass> normalization_layers();
std::vector<LayerClass> core_layers();
std::vector<LayerClass> activation_layers();
std::vector<LayerClass> reshaping_layers();
std::vector<LayerClass> merge_layers();

/// Keras classes TF.js 4.22 lacks, as (class name, why make_layer refuses a
/// model of one): a model TF.js cannot load is not made here either.
std::vector<std::pair<const char*, const char*>> keras_only_layers();

/// A layer class T's clone().
template <typename T>
class LayerOf : public Layer {
 public:
  std::unique_ptr<Layer> clone() const override {
    return std::make_unique<T>(static_cast<const T&>(*this));
  }
};

/// A layer class T of one input and no weights whose output has its input's
/// shape (an activation, Rescaling).
template <typename T>
class ElementwiseOf : public LayerOf<T> {
 public:
  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*weights*/) override {
    return single(inputs);
  }
};

/// The registry's maker of a layer class T constructed from its config.
template <typename T>
std::unique_ptr<Layer> make(const ordered_json& config) {
  return std::make_unique<T>(config);
}

}  // namespace mnist::layers
