// TF.js Layers format, reading the topology: modelTopology -> ModelSpec, a
// Sequential model's layers here (each made by the registry, layers.hpp, or a
// nested Sequential), a functional model's graph in graph.cpp, Keras 3's
// dialect rewritten as TF.js writes it (dialect.cpp); errors name the file,
// the layer and the field.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mnist/error.hpp"
#include "mnist/tfjs_io.hpp"
#include "tfjs_io/topology.hpp"

using nlohmann::ordered_json;

namespace mnist {

namespace tfjs {

namespace {

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

}  // namespace

/// A Sequential model's layers, and the input shape its InputLayer or first
/// layer declares (as TF.js reads a Sequential model; later layers' are
/// checked, not used).
struct SequentialLayers {
  std::vector<LayerPtr> layers;
  std::optional<Shape> input_shape;
};

SequentialLayers parse_sequential(const ordered_json& layers,
                                  const std::string& file,
                                  const ordered_json& manifest,
                                  const std::string& model_name);

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
  if (cls == "Model" || cls == "Functional") {
    w.fail("a functional model nested in a model is not supported (a nested Sequential is)");
  }
  if (cls == "Sequential") {
    // A nested Sequential model: its layers, read as a model's are.
    const ordered_json* inner = find(c, "layers");
    if (inner == nullptr || !inner->is_array()) {
      w.fail("missing the nested model's \"layers\" array");
    }
    SequentialLayers nested = parse_sequential(*inner, file, manifest, model_name);
    try {
      LayerPtr layer = make_nested_sequential(std::move(nested.layers), nested.input_shape);
      layer->name = name;
      layer->config = c;
      return layer;
    } catch (const FormatError& e) {
      w.fail(e.what());
    }
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

SequentialLayers parse_sequential(const ordered_json& layers,
                                  const std::string& file,
                                  const ordered_json& manifest,
                                  const std::string& model_name) {
  SequentialLayers out;
  for (size_t i = 0; i < layers.size(); ++i) {
    const ordered_json& entry = layers[i];
    if (find(entry, "class_name") != nullptr && entry["class_name"] == "InputLayer") {
      if (const ordered_json* c = find(entry, "config")) {
        std::optional<Shape> declared =
            declared_input_shape(*c, Where{file, "layer " + std::to_string(i) + " (InputLayer)"});
        if (declared && i == 0) {
          out.input_shape = std::move(declared);
        }
      }
      continue;
    }
    out.layers.push_back(parse_layer(entry, i, file, manifest, model_name, out.input_shape));
  }
  return out;
}

}  // namespace tfjs

ModelSpec parse_topology(const ordered_json& topology,
                         const std::string& origin,
                         const ordered_json& manifest) {
  using tfjs::find;
  const tfjs::Where w{origin, "modelTopology"};
  const ordered_json* top = &topology;
  if (const ordered_json* inner = find(topology, "model_config")) {
    top = inner;  // the Keras converter's wrapping
  }
  const ordered_json* cls = find(*top, "class_name");
  if (cls == nullptr || !cls->is_string()) {
    w.fail("missing \"class_name\"");
  }
  const ordered_json* config = find(*top, "config");
  if (*cls == "Model" || *cls == "Functional") {
    if (config == nullptr || !config->is_object()) {
      w.fail("missing the \"config\" object");
    }
    // TF.js numbers a nested model's calls from its call on its own input;
    // Keras from its first call in the model.
    const ordered_json* version = find(*top, "keras_version");
    const bool tfjs = version != nullptr && version->is_string() &&
                      version->get<std::string>().rfind("tfjs", 0) == 0;
    return tfjs::parse_functional(*config, origin, manifest, tfjs);
  }
  if (*cls != "Sequential") {
    w.fail("class " + cls->dump() +
           " is not supported (Sequential models load, and functional ones: \"Model\", "
           "Keras's \"Functional\")");
  }
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
      tfjs::check_dtype_policy(*dtype, w);
    }
  }
  if (layers == nullptr || !layers->is_array()) {
    w.fail("missing the \"layers\" array");
  }
  tfjs::SequentialLayers read = tfjs::parse_sequential(*layers, origin, manifest, spec.name);
  spec.layers = std::move(read.layers);
  if (read.input_shape) {
    spec.input_shape = std::move(*read.input_shape);  // else MNIST's
  }
  return spec;
}

}  // namespace mnist
