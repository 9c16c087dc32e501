// TF.js Layers format, reading the topology: modelTopology -> ModelSpec, each
// layer made by the registry (layers.hpp), Keras 3's dialect rewritten as TF.js
// writes it, errors naming the file, the layer and the field.
#include <functional>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
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

struct SequentialLayers {
  std::vector<LayerPtr> layers;
  std::optional<Shape> input_shape;  ///< what its InputLayer or first layer declares
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
  // The model's input: the shape its InputLayer or first layer declares (as
  // TF.js reads a Sequential model; later layers' are checked, not used).
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

/// One input of a layer's call in a functional model: the output of call
/// `node` of layer `layer`.
struct Ref {
  std::string layer;
  size_t node = 0;
};

/// The most calls one layer may have, and the most inputs one call may take.
constexpr size_t kMaxCalls = 1 << 16;

/// A reference as TF.js and Keras 2 write it, ["<layer>", node, tensor] with
/// the call's keyword arguments as a fourth entry in inbound_nodes, or as
/// Keras 3 writes it, {"class_name": "__keras_tensor__", "config":
/// {"keras_history": ["<layer>", node, tensor], ...}}.
Ref parse_ref(const ordered_json& r, const Where& w) {
  const ordered_json* triple = &r;
  if (r.is_object()) {
    const ordered_json* cls = find(r, "class_name");
    const ordered_json* config = find(r, "config");
    triple = cls != nullptr && *cls == "__keras_tensor__" && config != nullptr
                 ? find(*config, "keras_history")
                 : nullptr;
  }
  const auto whole = [](const ordered_json& v) {
    return v.is_number_integer() && v.get<int64_t>() >= 0;
  };
  if (triple == nullptr || !triple->is_array() || triple->size() < 3 || triple->size() > 4 ||
      !(*triple)[0].is_string() || !whole((*triple)[1]) || !whole((*triple)[2])) {
    w.fail("the input " + r.dump() +
           " is not a reference to a layer's output ([\"<layer>\", node, tensor])");
  }
  const std::string layer = (*triple)[0].get<std::string>();
  if ((*triple)[2].get<int64_t>() != 0) {
    w.fail("takes output " + (*triple)[2].dump() + " of layer '" + layer +
           "' (the layers here have one output each)");
  }
  if (triple->size() == 4) {
    const ordered_json& kwargs = (*triple)[3];
    if (!kwargs.is_null() && !(kwargs.is_object() && kwargs.empty())) {
      w.fail("calls the layer with the arguments " + kwargs.dump() +
             ", which are not supported (only plain calls on its inputs)");
    }
  }
  if ((*triple)[1].get<int64_t>() >= static_cast<int64_t>(kMaxCalls)) {
    w.fail("takes input from call " + (*triple)[1].dump() + " of layer '" + layer + "'");
  }
  return {layer, static_cast<size_t>((*triple)[1].get<int64_t>())};
}

/// Keras 3's tensors in a call's "args", depth first (a merge layer's inputs
/// are one list).
void collect_keras3_refs(const ordered_json& arg, const Where& w, std::vector<Ref>& refs) {
  if (arg.is_array()) {
    for (const auto& a : arg) {
      collect_keras3_refs(a, w, refs);
    }
    return;
  }
  refs.push_back(parse_ref(arg, w));
}

/// The inputs of one call of a layer: [[ref], [ref], ...] (TF.js, Keras 2)
/// or {"args": [...], "kwargs": {...}} (Keras 3).
std::vector<Ref> parse_call(const ordered_json& call, const Where& w) {
  std::vector<Ref> refs;
  if (call.is_array()) {
    for (const auto& r : call) {
      refs.push_back(parse_ref(r, w));
    }
  } else if (const ordered_json* args = find(call, "args"); args != nullptr && args->is_array()) {
    collect_keras3_refs(*args, w, refs);
    if (const ordered_json* kwargs = find(call, "kwargs")) {
      for (const auto& [key, value] : kwargs->items()) {
        if (!value.is_null()) {
          w.fail("calls the layer with the argument \"" + key + "\": " + value.dump() +
                 ", which is not supported (only plain calls on its inputs)");
        }
      }
    }
  } else {
    w.fail("an inbound node is " + call.dump().substr(0, 200) +
           " (expected a list of [\"<layer>\", node, tensor, {}] or Keras 3's {\"args\": ...})");
  }
  if (refs.empty()) {
    w.fail("a call of the layer takes no input");
  }
  return refs;
}

/// "input_layers" / "output_layers": [["<layer>", 0, 0], ...], or Keras 3's
/// one ["<layer>", 0, 0] for a single one.
std::vector<Ref> parse_ends(const ordered_json* ends, const char* key, const Where& w) {
  if (ends == nullptr || !ends->is_array() || ends->empty()) {
    w.fail(std::string("missing the \"") + key + "\" list");
  }
  std::vector<Ref> refs;
  if ((*ends)[0].is_string()) {
    refs.push_back(parse_ref(*ends, w));
  } else {
    for (const auto& r : *ends) {
      refs.push_back(parse_ref(r, w));
    }
  }
  return refs;
}

std::string ref_names(const std::vector<Ref>& refs) {
  std::string names;
  for (const Ref& r : refs) {
    names += (names.empty() ? "" : ", ") + r.layer;
  }
  return names;
}

/// A functional model's config: its layers, each call of each layer with
/// the calls it takes inputs from, one InputLayer and one output. The graph
/// comes out in an order where every call follows its inputs (Kahn's,
/// stable in file order); a cycle, a reference to a layer or call that does
/// not exist, a layer that does not lead to the output are refused, naming
/// the layer.
ModelSpec parse_functional(const ordered_json& config,
                           const std::string& origin,
                           const ordered_json& manifest,
                           bool counts_own_calls) {
  Where w{origin, "modelTopology"};
  ModelSpec spec;
  if (const ordered_json* name = find(config, "name"); name != nullptr && name->is_string()) {
    spec.name = name->get<std::string>();
  }
  if (const ordered_json* dtype = find(config, "dtype"); dtype != nullptr && dtype->is_object()) {
    check_dtype_policy(*dtype, w);
  }
  const ordered_json* layers = find(config, "layers");
  if (layers == nullptr || !layers->is_array() || layers->empty()) {
    w.fail("missing the \"layers\" array");
  }
  const std::vector<Ref> inputs = parse_ends(find(config, "input_layers"), "input_layers", w);
  const std::vector<Ref> outputs = parse_ends(find(config, "output_layers"), "output_layers", w);
  if (inputs.size() != 1) {
    w.fail("the model has " + std::to_string(inputs.size()) + " inputs (" + ref_names(inputs) +
           "): only models of one input load");
  }
  if (outputs.size() != 1) {
    w.fail("the model has " + std::to_string(outputs.size()) + " outputs (" + ref_names(outputs) +
           "): only models of one output load");
  }
  // Each layer, and the inputs of each of its calls.
  std::unordered_map<std::string, size_t> index_of;
  std::vector<std::vector<std::vector<Ref>>> calls;
  std::optional<Shape> input_shape;
  for (size_t i = 0; i < layers->size(); ++i) {
    const ordered_json& entry = (*layers)[i];
    std::optional<Shape> ignored;
    LayerPtr layer = parse_layer(entry, i, origin, manifest, spec.name, ignored);
    Where lw{origin,
             "layer " + std::to_string(i) + " '" + layer->name + "' (" + layer->class_name() + ")"};
    if (const ordered_json* name = find(entry, "name"); name != nullptr && *name != layer->name) {
      lw.fail("its entry's \"name\" " + name->dump() + " differs from its config's");
    }
    if (!index_of.emplace(layer->name, i).second) {
      lw.fail("two layers have this name (layer names must be unique)");
    }
    const ordered_json* inbound = find(entry, "inbound_nodes");
    if (inbound != nullptr && !inbound->is_array()) {
      lw.fail("\"inbound_nodes\" must be a list");
    }
    std::vector<std::vector<Ref>> layer_calls;
    if (std::string(layer->class_name()) == "InputLayer") {
      if (layer->name != inputs[0].layer) {
        lw.fail("is not the model's input '" + inputs[0].layer +
                "' (its \"input_layers\"): only models of one input load");
      }
      input_shape = declared_input_shape(entry["config"], lw);
      if (!input_shape) {
        lw.fail("declares no input shape (\"batch_input_shape\" or \"batch_shape\")");
      }
      layer_calls.emplace_back();  // its one node: the model's input
    } else if (inbound != nullptr) {
      if (inbound->size() > kMaxCalls) {
        lw.fail("is called " + std::to_string(inbound->size()) + " times");
      }
      for (const auto& call : *inbound) {
        layer_calls.push_back(parse_call(call, lw));
      }
    }
    if (layer_calls.empty()) {
      lw.fail("has no inbound node: nothing calls it in the model's graph");
    }
    spec.layers.push_back(std::move(layer));
    calls.push_back(std::move(layer_calls));
  }
  if (!input_shape) {
    w.fail("the model's input '" + inputs[0].layer + "' is not an InputLayer of its layers");
  }
  spec.input_shape = std::move(*input_shape);
  // Number every call; resolve each reference to the call it names.
  std::vector<size_t> first(calls.size() + 1, 0);
  for (size_t i = 0; i < calls.size(); ++i) {
    first[i + 1] = first[i] + calls[i].size();
  }
  const size_t total = first.back();
  std::vector<size_t> layer_of(total);
  std::vector<std::vector<size_t>> from(total);
  const auto resolve = [&](const Ref& r, const Where& rw) {
    const auto it = index_of.find(r.layer);
    if (it == index_of.end()) {
      rw.fail("takes input from '" + r.layer + "', which is not a layer of the model");
    }
    // TF.js counts a nested Sequential's call on its own input (own_calls);
    // Keras counts only the calls in the model.
    const size_t own = counts_own_calls ? spec.layers[it->second]->own_calls() : 0;
    if (r.node < own) {
      rw.fail("takes input from call " + std::to_string(r.node) + " of layer '" + r.layer +
              "', its call on its own input, which is not part of this model");
    }
    if (r.node - own >= calls[it->second].size()) {
      rw.fail("takes input from call " + std::to_string(r.node) + " of layer '" + r.layer +
              "', which is called " + std::to_string(calls[it->second].size() + own) + " time(s)");
    }
    return first[it->second] + r.node - own;
  };
  for (size_t i = 0; i < calls.size(); ++i) {
    Where lw{origin, "layer '" + spec.layers[i]->name + "'"};
    for (size_t k = 0; k < calls[i].size(); ++k) {
      layer_of[first[i] + k] = i;
      for (const Ref& r : calls[i][k]) {
        from[first[i] + k].push_back(resolve(r, lw));
      }
    }
  }
  const size_t output = resolve(outputs[0], w);
  // Kahn's order, stable in file order; calls of one layer keep their order.
  std::vector<size_t> waiting(total, 0);
  std::vector<std::vector<size_t>> readers(total);
  for (size_t n = 0; n < total; ++n) {
    waiting[n] = from[n].size() + (n > first[layer_of[n]] ? 1 : 0);
    for (const size_t f : from[n]) {
      readers[f].push_back(n);
    }
    if (n > first[layer_of[n]]) {
      readers[n - 1].push_back(n);  // a layer's calls in their order
    }
  }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t n = 0; n < total; ++n) {
    if (waiting[n] == 0) {
      ready.push(n);
    }
  }
  std::vector<size_t> order;
  std::vector<size_t> position(total, total);
  while (!ready.empty()) {
    const size_t n = ready.top();
    ready.pop();
    position[n] = order.size();
    order.push_back(n);
    for (const size_t r : readers[n]) {
      if (--waiting[r] == 0) {
        ready.push(r);
      }
    }
  }
  if (order.size() != total) {
    std::string names;
    size_t shown = 0;
    for (size_t n = 0; n < total && shown < 5; ++n) {
      if (position[n] == total) {
        names += (shown++ ? ", " : "") + std::string("'") + spec.layers[layer_of[n]]->name + "'";
      }
    }
    w.fail("the layers' calls form a cycle (among " + names + ")");
  }
  // Only what leads to the output is the model (TF.js drops the rest, and
  // then cannot load its weights): refused, naming the layer.
  std::vector<bool> used(total, false);
  std::vector<size_t> stack = {output};
  used[output] = true;
  while (!stack.empty()) {
    const size_t n = stack.back();
    stack.pop_back();
    for (const size_t f : from[n]) {
      if (!used[f]) {
        used[f] = true;
        stack.push_back(f);
      }
    }
  }
  for (size_t n = 0; n < total; ++n) {
    if (!used[n]) {
      w.fail("layer '" + spec.layers[layer_of[n]]->name + "' (call " +
             std::to_string(n - first[layer_of[n]]) + ") does not lead to the model's output '" +
             outputs[0].layer + "'");
    }
  }
  Graph graph;
  for (const size_t n : order) {
    GraphNode node{layer_of[n], {}};
    for (const size_t f : from[n]) {
      node.inputs.push_back(position[f]);
    }
    graph.nodes.push_back(std::move(node));
  }
  graph.output = position[output];
  spec.graph = std::move(graph);
  return spec;
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
    return parse_functional(*config, origin, manifest, tfjs);
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
      check_dtype_policy(*dtype, w);
    }
  }
  if (layers == nullptr || !layers->is_array()) {
    w.fail("missing the \"layers\" array");
  }
  SequentialLayers read = parse_sequential(*layers, origin, manifest, spec.name);
  spec.layers = std::move(read.layers);
  if (read.input_shape) {
    spec.input_shape = std::move(*read.input_shape);  // else MNIST's
  }
  return spec;
}

}  // namespace mnist
