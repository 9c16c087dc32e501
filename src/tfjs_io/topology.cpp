// TF.js Layers format, reading the topology: modelTopology -> ModelSpec, each
// layer made by the registry (layers.hpp), Keras 3's dialect rewritten as TF.js
// writes it, errors naming the file, the layer and the field.
#include <optional>
#include <string>
#include <utility>

#include "mnist/error.hpp"
#include "mnist/tfjs_io.hpp"
#include "tfjs_io/reading.hpp"

using nlohmann::ordered_json;

namespace mnist {

namespace {

using tfjs::find;
using tfjs::Where;

/// The largest input one example may have: 16,777,216 values (4096 x 4096
/// pixels of one channel), each side at most 65,536, refused before any
/// tensor is made.
constexpr int64_t kMaxInputValues = int64_t{1} << 24;
constexpr int64_t kMaxInputSide = int64_t{1} << 16;

/// The input shape a layer's config declares (without the batch axis), if
/// any: "batch_input_shape" (TF.js, Keras 2), "batch_shape" (Keras 3) or
/// "input_shape"; [h,w,c] or [n], each size a positive integer, the whole
/// bounded (kMaxInputValues).
std::optional<Shape> declared_input_shape(const ordered_json& c, const Where& w) {
  std::optional<Shape> shape;
  for (const char* key : {"batch_input_shape", "batch_shape", "input_shape"}) {
    const ordered_json* v = find(c, key);
    if (v == nullptr || shape) {
      continue;
    }
    const bool batch = std::string(key) != "input_shape";
    const std::string what = std::string("field \"") + key + "\" is " + v->dump();
    if (!v->is_array() || v->size() < (batch ? 2U : 1U)) {
      w.fail(what + " (expected " + (batch ? "[null,h,w,c] or [null,n]" : "[h,w,c] or [n]") + ")");
    }
    Shape dims;
    int64_t values = 1;
    for (size_t i = batch ? 1 : 0; i < v->size(); ++i) {
      const ordered_json& d = (*v)[i];
      if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > kMaxInputSide) {
        w.fail(what + " (each size must be a whole number from 1 to " +
               std::to_string(kMaxInputSide) + ")");
      }
      dims.push_back(d.get<int64_t>());
      values *= dims.back();
      if (values > kMaxInputValues) {
        w.fail(what + " (more than " + std::to_string(kMaxInputValues) +
               " values per example: too large to train here)");
      }
    }
    if (dims.size() != 1 && dims.size() != 3) {
      w.fail(what + " (supported: images [null,h,w,c] and flat inputs [null,n])");
    }
    shape = std::move(dims);
  }
  return shape;
}

/// A "dtype" as Keras 3 writes it: a DTypePolicy object, {"module": "keras",
/// "class_name": "DTypePolicy", "config": {"name": "float32"},
/// "registered_name": null}. Only a float32 policy is accepted (TF.js
/// computes in float32); mixed_float16, bfloat16 and quantized policies are
/// refused, naming the field.
void check_dtype_policy(const ordered_json& dtype, const Where& w) {
  const ordered_json* cls = find(dtype, "class_name");
  const ordered_json* config = find(dtype, "config");
  const ordered_json* name = config != nullptr ? find(*config, "name") : nullptr;
  const bool policy = cls != nullptr && (*cls == "DTypePolicy" || *cls == "FloatDTypePolicy");
  if (!policy || name == nullptr || *name != "float32") {
    w.fail("field \"dtype\" is " + dtype.dump() +
           " (only float32 loads: the string \"float32\" or Keras 3's DTypePolicy "
           "named \"float32\")");
  }
}

/// Keras 3's serialized objects (initializers, regularizers, constraints)
/// carry "module" and "registered_name" next to "class_name" and "config":
/// metadata TF.js does not write, dropped here at any depth.
ordered_json without_keras3_metadata(const ordered_json& value) {
  if (value.is_array()) {
    ordered_json out = ordered_json::array();
    for (const auto& v : value) {
      out.push_back(without_keras3_metadata(v));
    }
    return out;
  }
  if (!value.is_object()) {
    return value;
  }
  const bool serialized = value.contains("class_name");
  ordered_json out = ordered_json::object();
  for (const auto& [key, v] : value.items()) {
    if (!(serialized && (key == "module" || key == "registered_name"))) {
      out[key] = without_keras3_metadata(v);
    }
  }
  return out;
}

/// A layer's config in TF.js's keys: Keras 3's dialect (tensorflowjs_converter
/// on a Keras 3 model: a DTypePolicy "dtype", "batch_shape", "module",
/// "registered_name", "build_config") rewritten as TF.js 4.22 writes and
/// reads it. A config TF.js or mnist-train wrote comes out as it went in, key
/// order too (so such models save byte-identically again).
ordered_json tfjs_layer_config(const ordered_json& config, const Where& w) {
  ordered_json out = ordered_json::object();
  for (const auto& [key, v] : config.items()) {
    if (key == "module" || key == "registered_name" || key == "build_config") {
      continue;  // Keras 3's metadata, of no use to TF.js
    }
    if (key == "dtype" && v.is_object()) {
      check_dtype_policy(v, w);
      out[key] = "float32";
    } else if (key == "batch_shape" && !config.contains("batch_input_shape")) {
      out["batch_input_shape"] = v;
    } else {
      out[key] = without_keras3_metadata(v);
    }
  }
  return out;
}

/// The depth multiplier of SeparableConv2D layer `name` as the manifest's
/// shape of its depthwise kernel gives it ([kh,kw,in,depth_multiplier]), or
/// 0. Its weight is named "<name>/depthwise_kernel", or, by Keras 3,
/// "<model name>/<name>/depthwise_kernel".
int64_t manifest_depth_multiplier(const ordered_json& manifest,
                                  const std::string& model_name,
                                  const std::string& name) {
  const std::string weight_name = name + "/depthwise_kernel";
  int64_t multiplier = 0;
  for (const auto& group : manifest) {
    const ordered_json* weights = find(group, "weights");
    for (const auto& entry :
         weights != nullptr && weights->is_array() ? *weights : ordered_json::array()) {
      const ordered_json* weight = find(entry, "name");
      const ordered_json* shape = find(entry, "shape");
      if (weight != nullptr &&
          (*weight == weight_name || *weight == model_name + "/" + weight_name) &&
          shape != nullptr && shape->is_array() && shape->size() == 4 &&
          (*shape)[3].is_number_integer() && (*shape)[3].get<int64_t>() >= 1 &&
          (*shape)[3].get<int64_t>() <= (int64_t{1} << 16)) {
        multiplier = (*shape)[3].get<int64_t>();
      }
    }
  }
  return multiplier;
}

LayerPtr parse_layer(const ordered_json& entry,
                     size_t index,
                     const std::string& file,
                     const ordered_json& manifest,
                     const std::string& model_name,
                     std::optional<Shape>& input_shape) {
  Where w{file, "layer " + std::to_string(index)};
  if (!entry.is_object() || find(entry, "class_name") == nullptr ||
      !entry["class_name"].is_string()) {
    w.fail("expected an object with \"class_name\" and \"config\"");
  }
  const std::string cls = entry["class_name"].get<std::string>();
  const ordered_json* cp = find(entry, "config");
  if (cp == nullptr || !cp->is_object()) {
    w.fail("class " + cls + ": missing \"config\" object");
  }
  std::string name;
  if (const ordered_json* n = find(*cp, "name"); n != nullptr && n->is_string()) {
    name = n->get<std::string>();
  } else {
    w.fail("class " + cls + ": missing field \"name\"");
  }
  if (name.empty() || name.find_first_of("/.") != std::string::npos) {
    w.fail("layer name \"" + name + "\" is empty or holds '/' or '.'");
  }
  w.entry = "layer " + std::to_string(index) + " '" + name + "' (" + cls + ")";
  // Keras 3's dialect (tensorflowjs_converter on a Keras 3 model) in TF.js's
  // keys, so that the config kept for saving again is one TF.js loads; a
  // config TF.js or mnist-train wrote is left as it is.
  const ordered_json c = tfjs_layer_config(*cp, w);
  if (std::optional<Shape> declared = declared_input_shape(c, w); declared && index == 0) {
    input_shape = std::move(declared);
  }
  try {
    if (cls == "SeparableConv2D" && find(c, "depth_multiplier") == nullptr) {
      // TF.js 4.22's SeparableConv2D leaves "depth_multiplier" out of the
      // config it saves (and TF.js then fails to load its own model when the
      // multiplier is above 1): where the field is absent, it is the last
      // axis of the layer's depthwise kernel in the manifest.
      ordered_json with = c;
      if (const int64_t m = manifest_depth_multiplier(manifest, model_name, name); m > 0) {
        with["depth_multiplier"] = m;
      }
      LayerPtr layer = make_layer(cls, with);
      layer->config = c;  // kept as read (key order too), for saving again
      return layer;
    }
    LayerPtr layer = make_layer(cls, c);
    layer->config = c;
    return layer;
  } catch (const FormatError& e) {
    w.fail(e.what());
  }
}

}  // namespace

ModelSpec parse_topology(const ordered_json& topology,
                         const std::string& origin,
                         const ordered_json& manifest) {
  Where w{origin, "modelTopology"};
  const ordered_json* top = &topology;
  if (const ordered_json* inner = find(topology, "model_config")) {
    top = inner;  // the Keras converter's wrapping
  }
  const ordered_json* cls = find(*top, "class_name");
  if (cls == nullptr || !cls->is_string()) {
    w.fail("missing \"class_name\"");
  }
  if (*cls != "Sequential") {
    w.fail("class " + cls->dump() +
           " is not supported (only Sequential models load; a "
           "functional Model is not supported)");
  }
  const ordered_json* config = find(*top, "config");
  const ordered_json* layers = config != nullptr && config->is_array() ? config : nullptr;
  ModelSpec spec;
  if (layers == nullptr && config != nullptr) {
    layers = find(*config, "layers");
    if (const ordered_json* name = find(*config, "name"); name != nullptr && name->is_string()) {
      spec.name = name->get<std::string>();
    }
    // Keras 3 also gives the model a "dtype" (a DTypePolicy), "trainable"
    // and "build_input_shape": only a dtype other than float32 matters.
    if (const ordered_json* dtype = find(*config, "dtype");
        dtype != nullptr && dtype->is_object()) {
      check_dtype_policy(*dtype, w);
    }
  }
  if (layers == nullptr || !layers->is_array()) {
    w.fail("missing the \"layers\" array");
  }
  // The model's input: the shape its InputLayer or first layer declares (as
  // TF.js reads a Sequential model; later layers' are checked, not used),
  // else MNIST's.
  std::optional<Shape> input_shape;
  for (size_t i = 0; i < layers->size(); ++i) {
    const ordered_json& entry = (*layers)[i];
    if (find(entry, "class_name") != nullptr && entry["class_name"] == "InputLayer") {
      if (const ordered_json* c = find(entry, "config")) {
        std::optional<Shape> declared =
            declared_input_shape(*c, Where{origin, "layer " + std::to_string(i) + " (InputLayer)"});
        if (declared && i == 0) {
          input_shape = std::move(declared);
        }
      }
      continue;
    }
    spec.layers.push_back(parse_layer(entry, i, origin, manifest, spec.name, input_shape));
  }
  if (input_shape) {
    spec.input_shape = std::move(*input_shape);
  }
  return spec;
}

}  // namespace mnist
