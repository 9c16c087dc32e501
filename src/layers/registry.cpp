// The registry (the table from TF.js class name to layer) and what the layer
// families share: checked config fields, regularizers, TF's window
// arithmetic.
#include <algorithm>
#include <cmath>
#include <sstream>

#include <ATen/ATen.h>

#include "layers/kernels.hpp"
#include "layers/layer_util.hpp"

namespace mnist {

namespace layers {

void fail(const std::string& what) { throw FormatError(what); }

const ordered_json* find(const ordered_json& object, const char* key) {
  if (!object.is_object()) {
    return nullptr;
  }
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

int64_t get_int(const ordered_json& c, const char* key, int64_t fallback) {
  const ordered_json* v = find(c, key);
  if (v == nullptr) {
    if (fallback >= 0) {
      return fallback;
    }
    fail(std::string("missing field \"") + key + "\"");
  }
  if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > (int64_t{1} << 31)) {
    fail(std::string("field \"") + key + "\" must be a non-negative integer, found " + v->dump());
  }
  return v->get<int64_t>();
}

Pair get_pair(const ordered_json& c, const char* key, Pair fallback) {
  const ordered_json* v = find(c, key);
  if (v == nullptr) {
    if (fallback[0] > 0) {
      return fallback;
    }
    fail(std::string("missing field \"") + key + "\"");
  }
  auto positive = [&](const ordered_json& x) {
    if (!x.is_number_integer() || x.get<int64_t>() < 1 || x.get<int64_t>() > 4096) {
      fail(std::string("field \"") + key + "\" must hold positive integers, found " + v->dump());
    }
    return x.get<int64_t>();
  };
  if (v->is_array() && v->size() == 2) {
    return {positive((*v)[0]), positive((*v)[1])};
  }
  if (v->is_number_integer()) {
    const int64_t n = positive(*v);
    return {n, n};
  }
  fail(std::string("field \"") + key + "\" must be an integer or a pair, found " + v->dump());
}

std::vector<int64_t> get_axes(const ordered_json& c,
                              const char* key,
                              std::vector<int64_t> fallback,
                              size_t min_count,
                              size_t max_count,
                              const char* list_text) {
  const ordered_json* v = find(c, key);
  if (v == nullptr) {
    return fallback;
  }
  if (v->is_number_integer()) {
    return {v->get<int64_t>()};
  }
  const auto must_be = [&](const char* what) {
    return std::string("field \"") + key + "\" must be an integer or " + what + ", found " +
           v->dump();
  };
  if (!v->is_array() || v->size() < min_count || v->size() > max_count) {
    fail(must_be(list_text));
  }
  std::vector<int64_t> axes;
  for (const auto& a : *v) {
    if (!a.is_number_integer()) {
      fail(must_be("a list of them"));
    }
    axes.push_back(a.get<int64_t>());
  }
  return axes;
}

bool get_bool(const ordered_json& c, const char* key, bool fallback) {
  const ordered_json* v = find(c, key);
  if (v == nullptr) {
    return fallback;
  }
  if (!v->is_boolean()) {
    fail(std::string("field \"") + key + "\" must be true or false, found " + v->dump());
  }
  return v->get<bool>();
}

double get_number(const ordered_json& c, const char* key, double fallback) {
  const ordered_json* v = find(c, key);
  if (v == nullptr) {
    return fallback;
  }
  if (!v->is_number()) {
    fail(std::string("field \"") + key + "\" must be a number, found " + v->dump());
  }
  return v->get<double>();
}

bool get_same_padding(const ordered_json& c) {
  const ordered_json* v = find(c, "padding");
  if (v == nullptr || *v == "valid") {
    return false;
  }
  if (*v == "same") {
    return true;
  }
  fail("field \"padding\" is " + v->dump() + " (supported: \"valid\", \"same\")");
}

Activation get_activation(const ordered_json& c) {
  const ordered_json* v = find(c, "activation");
  if (v == nullptr) {
    return Activation::kLinear;
  }
  if (v->is_string()) {
    if (const auto a = parse_activation(v->get<std::string>())) {
      return *a;
    }
  }
  fail("field \"activation\" is " + v->dump() + " (supported: " + activation_names() + ")");
}

void require_channels_last(const ordered_json& c) {
  const ordered_json* v = find(c, "data_format");
  if (v != nullptr && *v != "channels_last") {
    fail("field \"data_format\" is " + v->dump() + " (only \"channels_last\" is supported)");
  }
}

void read_regularizers(const ordered_json& c,
                       const std::vector<std::pair<const char*, const char*>>& keys,
                       std::vector<std::pair<std::string, Penalty>>& penalties,
                       std::string& training_problem) {
  // L1L2 regularizers of a layer's weights are applied in training, as
  // TF.js applies them; constraints, activity regularizers and other
  // regularizer classes change what training does and are not, so they are
  // kept (saved again) and a training refuses such a layer.
  for (const auto& [key, value] : c.items()) {
    const auto ends_with = [&key = key](const std::string& tail) {
      return key.size() > tail.size() &&
             key.compare(key.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (value.is_null() || !(ends_with("_regularizer") || ends_with("_constraint"))) {
      continue;
    }
    const ordered_json* kind = find(value, "class_name");
    const char* weight = nullptr;
    for (const auto& [name, target] : keys) {
      if (key == name) {
        weight = target;
      }
    }
    if (weight != nullptr && kind != nullptr && *kind == "L1L2") {
      // regularizers.ts L1L2.fromConfig: a missing (or null) l1 or l2 is 0.01.
      Penalty penalty;
      const ordered_json* config = find(value, "config");
      for (auto [name, factor] : {std::pair{"l1", &penalty.l1}, {"l2", &penalty.l2}}) {
        const ordered_json* v = config != nullptr ? find(*config, name) : nullptr;
        if (v == nullptr || v->is_null()) {
          *factor = 0.01;
        } else if (v->is_number() && std::isfinite(v->get<double>()) && v->get<double>() >= 0.0) {
          *factor = v->get<double>();
        } else {
          fail("field \"" + key + "\": " + name + " must be a number of at least 0, found " +
               v->dump());
        }
      }
      penalties.emplace_back(weight, penalty);
      continue;
    }
    if (training_problem.empty()) {
      training_problem =
          "field \"" + key + "\" (" +
          (kind != nullptr && kind->is_string() ? kind->get<std::string>() : value.dump()) +
          ") is not applied in training by mnist-train (only L1L2 regularizers of its weights "
          "are)";
    }
  }
}

Penalty penalty_of(const std::vector<std::pair<std::string, Penalty>>& penalties,
                   const std::string& name) {
  for (const auto& [weight, penalty] : penalties) {
    if (weight == name) {
      return penalty;
    }
  }
  return {};
}

ordered_json variance_scaling(const char* distribution) {
  return {{"class_name", "VarianceScaling"},
          {"config",
           {{"scale", 1}, {"mode", "fan_avg"}, {"distribution", distribution}, {"seed", nullptr}}}};
}

ordered_json zeros_initializer() {
  return {{"class_name", "Zeros"}, {"config", ordered_json::object()}};
}

ordered_json ones_initializer() {
  return {{"class_name", "Ones"}, {"config", ordered_json::object()}};
}

std::string pair_text(const Pair& pair) {
  return "[" + std::to_string(pair[0]) + "," + std::to_string(pair[1]) + "]";
}

namespace {

AxisPlan plan_axis(int64_t in, int64_t window, int64_t stride, bool same) {
  AxisPlan p;
  if (same) {
    p.out = (in + stride - 1) / stride;
    const int64_t total = std::max<int64_t>((p.out - 1) * stride + window - in, 0);
    p.pad_before = total / 2;
    p.pad_after = total - p.pad_before;
  } else {
    p.out = in >= window ? (in - window) / stride + 1 : 0;
  }
  return p;
}

/// The extent of a kernel of `size` taps `dilation` apart (TF.js's
/// conv_util getEffectiveFilterSize).
int64_t dilated(int64_t size, int64_t dilation) { return (size - 1) * dilation + 1; }

}  // namespace

std::pair<AxisPlan, AxisPlan> Window::plan(int64_t height, int64_t width) const {
  return {plan_axis(height, dilated(size[0], dilation[0]), strides[0], same),
          plan_axis(width, dilated(size[1], dilation[1]), strides[1], same)};
}

Pair Window::output_size(const Shape& input) const {
  require_image(input);
  if (size[0] < 1 || size[1] < 1 || strides[0] < 1 || strides[1] < 1) {
    fail("kernel/pool size and strides must be at least 1");
  }
  if (dilation[0] < 1 || dilation[1] < 1) {
    fail("dilation_rate must be at least 1");
  }
  // tfjs-core conv2d and depthwiseConv2d: "Either strides or dilations must
  // be 1".
  if ((dilation[0] > 1 || dilation[1] > 1) && (strides[0] > 1 || strides[1] > 1)) {
    fail("dilation_rate " + pair_text(dilation) + " with strides " + pair_text(strides) +
         ": either the strides or the dilation rate must be 1 (as in TF.js)");
  }
  const auto [h, w] = plan(input[0], input[1]);
  if (h.out < 1 || w.out < 1) {
    fail("input " + shape_text(input) + " is smaller than the window");
  }
  return {h.out, w.out};
}

void require_image(const Shape& input) {
  if (input.size() != 3) {
    fail("needs an image input [h,w,c], got " + shape_text(input));
  }
}

at::Tensor pad_hw(const at::Tensor& x, const AxisPlan& h, const AxisPlan& w, double value) {
  return pad_image(x, h.pad_before, h.pad_after, w.pad_before, w.pad_after, value);
}

at::Tensor pad_image(
    const at::Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right, double value) {
  if (top == 0 && bottom == 0 && left == 0 && right == 0) {
    return x;
  }
  // No gradient wanted, float32 channels-last on the CPU, padding not
  // cropping: each output row written once (kernels.hpp).
  if (!(at::GradMode::is_enabled() && x.requires_grad()) && x.scalar_type() == at::kFloat &&
      x.device().is_cpu() && x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
      std::min({top, bottom, left, right}) >= 0) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    at::Tensor y = at::empty({n, c, h + top + bottom, w + left + right},
                             x.options().memory_format(at::MemoryFormat::ChannelsLast));
    kernels::pad_nhwc(x.data_ptr<float>(), n, h, w, c, top, bottom, left, right,
                      static_cast<float>(value), y.data_ptr<float>());
    return y;
  }
  return at::constant_pad_nd(x, {left, right, top, bottom}, value);
}

const Shape& single(const std::vector<Shape>& inputs) {
  if (inputs.size() != 1) {
    fail("takes one input, got " + std::to_string(inputs.size()));
  }
  return inputs.front();
}

namespace {

/// The table: every class the registry has, family after family.
const std::vector<LayerClass>& registry() {
  static const std::vector<LayerClass> table = [] {
    std::vector<LayerClass> all;
    for (const auto& family :
         {convolutional_layers(), pooling_layers(), normalization_layers(), core_layers(),
          activation_layers(), reshaping_layers(), merge_layers()}) {
      all.insert(all.end(), family.begin(), family.end());
    }
    return all;
  }();
  return table;
}

}  // namespace

}  // namespace layers

std::string shape_text(const Shape& shape) {
  std::ostringstream out;
  out << "[null";
  for (int64_t d : shape) {
    out << "," << d;
  }
  out << "]";
  return out.str();
}

std::vector<std::string> layer_classes() {
  std::vector<std::string> names;
  for (const auto& c : layers::registry()) {
    names.emplace_back(c.name);
  }
  return names;
}

LayerPtr make_layer(const std::string& class_name, const nlohmann::ordered_json& config) {
  for (const auto& c : layers::registry()) {
    if (class_name == c.name) {
      const bool trainable = layers::get_bool(config, "trainable", true);
      std::unique_ptr<Layer> layer = c.make(config);
      if (const auto* name = layers::find(config, "name"); name != nullptr && name->is_string()) {
        layer->name = name->get<std::string>();
      }
      layer->trainable = trainable;
      return LayerPtr(std::move(layer));
    }
  }
  for (const auto& [name, why] : layers::keras_only_layers()) {
    if (class_name == name) {
      layers::fail("layer class " + class_name + " is not supported: " + why);
    }
  }
  std::string list;
  for (const std::string& name : layer_classes()) {
    list += (list.empty() ? "" : ", ") + name;
  }
  layers::fail("layer class " + class_name + " is not supported (supported: " + list + ")");
}

}  // namespace mnist
