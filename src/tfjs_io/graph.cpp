// A functional model's graph in the TF.js Layers format: each layer's calls
// ("inbound_nodes", in TF.js's and Keras 2's form or Keras 3's), one input and
// one output, checked (references, cycles, what does not lead to the output)
// and put in an order where every call follows its inputs.
#include <functional>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mnist/error.hpp"
#include "mnist/layers.hpp"
#include "tfjs_io/topology.hpp"

using nlohmann::ordered_json;

namespace mnist::tfjs {

namespace {

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

/// A functional model's layers and the inputs of each of their calls.
struct Calls {
  std::vector<LayerPtr> layers;
  std::vector<std::vector<std::vector<Ref>>> of;  ///< per layer, per call, its inputs
  std::unordered_map<std::string, size_t> index_of;
  std::optional<Shape> input_shape;  ///< what the InputLayer declares
};

/// Each entry of "layers": the layer and the inputs of its calls. The one
/// InputLayer must be `input` (the model's "input_layers"); its one call
/// takes the model's input.
Calls read_calls(const ordered_json& layers,
                 const std::string& input,
                 const std::string& origin,
                 const ordered_json& manifest,
                 const std::string& model_name) {
  Calls calls;
  for (size_t i = 0; i < layers.size(); ++i) {
    const ordered_json& entry = layers[i];
    std::optional<Shape> ignored;
    LayerPtr layer = parse_layer(entry, i, origin, manifest, model_name, ignored);
    Where lw{origin,
             "layer " + std::to_string(i) + " '" + layer->name + "' (" + layer->class_name() + ")"};
    if (const ordered_json* name = find(entry, "name"); name != nullptr && *name != layer->name) {
      lw.fail("its entry's \"name\" " + name->dump() + " differs from its config's");
    }
    if (!calls.index_of.emplace(layer->name, i).second) {
      lw.fail("two layers have this name (layer names must be unique)");
    }
    const ordered_json* inbound = find(entry, "inbound_nodes");
    if (inbound != nullptr && !inbound->is_array()) {
      lw.fail("\"inbound_nodes\" must be a list");
    }
    std::vector<std::vector<Ref>> layer_calls;
    if (std::string(layer->class_name()) == "InputLayer") {
      if (layer->name != input) {
        lw.fail("is not the model's input '" + input +
                "' (its \"input_layers\"): only models of one input load");
      }
      calls.input_shape = declared_input_shape(entry["config"], lw);
      if (!calls.input_shape) {
        lw.fail("declares no input shape (\"batch_input_shape\" or \"batch_shape\")");
      }
      layer_calls.emplace_back();  // its one call: on the model's input
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
    calls.layers.push_back(std::move(layer));
    calls.of.push_back(std::move(layer_calls));
  }
  return calls;
}

/// The calls numbered layer after layer (call k of layer i is first[i] + k),
/// each with the calls it reads.
struct Numbered {
  std::vector<size_t> first;     ///< per layer, its call 0's number; then the total
  std::vector<size_t> layer_of;  ///< per call, its layer
  std::vector<std::vector<size_t>> from;
  size_t output = 0;  ///< the call whose output is the model's
};

Numbered number_calls(const Calls& calls,
                      const Ref& output,
                      bool counts_own_calls,
                      const std::string& origin) {
  Numbered g;
  g.first.assign(calls.of.size() + 1, 0);
  for (size_t i = 0; i < calls.of.size(); ++i) {
    g.first[i + 1] = g.first[i] + calls.of[i].size();
  }
  const size_t total = g.first.back();
  g.layer_of.resize(total);
  g.from.resize(total);
  const auto resolve = [&](const Ref& r, const Where& rw) {
    const auto it = calls.index_of.find(r.layer);
    if (it == calls.index_of.end()) {
      rw.fail("takes input from '" + r.layer + "', which is not a layer of the model");
    }
    // TF.js counts a nested Sequential's call on its own input (own_calls);
    // Keras counts only the calls in the model.
    const size_t own = counts_own_calls ? calls.layers[it->second]->own_calls() : 0;
    const size_t count = calls.of[it->second].size();
    if (r.node < own) {
      rw.fail("takes input from call " + std::to_string(r.node) + " of layer '" + r.layer +
              "', its call on its own input, which is not part of this model");
    }
    if (r.node - own >= count) {
      rw.fail("takes input from call " + std::to_string(r.node) + " of layer '" + r.layer +
              "', which is called " + std::to_string(count + own) + " time(s)");
    }
    return g.first[it->second] + r.node - own;
  };
  for (size_t i = 0; i < calls.of.size(); ++i) {
    const Where lw{origin, "layer '" + calls.layers[i]->name + "'"};
    for (size_t k = 0; k < calls.of[i].size(); ++k) {
      g.layer_of[g.first[i] + k] = i;
      for (const Ref& r : calls.of[i][k]) {
        g.from[g.first[i] + k].push_back(resolve(r, lw));
      }
    }
  }
  g.output = resolve(output, Where{origin, "modelTopology"});
  return g;
}

/// The calls in Kahn's order, stable in file order, a layer's calls in
/// their order; a cycle is refused, naming (up to five of) its layers.
std::vector<size_t> call_order(const Numbered& g,
                               const std::vector<LayerPtr>& layers,
                               const Where& w) {
  const size_t total = g.layer_of.size();
  std::vector<size_t> waiting(total, 0);
  std::vector<std::vector<size_t>> readers(total);
  for (size_t n = 0; n < total; ++n) {
    const bool later_call = n > g.first[g.layer_of[n]];
    waiting[n] = g.from[n].size() + (later_call ? 1 : 0);
    for (const size_t f : g.from[n]) {
      readers[f].push_back(n);
    }
    if (later_call) {
      readers[n - 1].push_back(n);
    }
  }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t n = 0; n < total; ++n) {
    if (waiting[n] == 0) {
      ready.push(n);
    }
  }
  std::vector<size_t> order;
  std::vector<bool> placed(total, false);
  while (!ready.empty()) {
    const size_t n = ready.top();
    ready.pop();
    placed[n] = true;
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
      if (!placed[n]) {
        names += (shown++ ? ", " : "") + std::string("'") + layers[g.layer_of[n]]->name + "'";
      }
    }
    w.fail("the layers' calls form a cycle (among " + names + ")");
  }
  return order;
}

/// Only what leads to the output is the model (TF.js drops the rest, and
/// then cannot load its weights): anything else is refused, naming the layer.
void check_all_lead_to_output(const Numbered& g,
                              const std::vector<LayerPtr>& layers,
                              const std::string& output,
                              const Where& w) {
  std::vector<bool> used(g.layer_of.size(), false);
  std::vector<size_t> stack = {g.output};
  used[g.output] = true;
  while (!stack.empty()) {
    const size_t n = stack.back();
    stack.pop_back();
    for (const size_t f : g.from[n]) {
      if (!used[f]) {
        used[f] = true;
        stack.push_back(f);
      }
    }
  }
  for (size_t n = 0; n < used.size(); ++n) {
    if (!used[n]) {
      w.fail("layer '" + layers[g.layer_of[n]]->name + "' (call " +
             std::to_string(n - g.first[g.layer_of[n]]) +
             ") does not lead to the model's output '" + output + "'");
    }
  }
}

}  // namespace

ModelSpec parse_functional(const ordered_json& config,
                           const std::string& origin,
                           const ordered_json& manifest,
                           bool counts_own_calls) {
  const Where w{origin, "modelTopology"};
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
  Calls calls = read_calls(*layers, inputs[0].layer, origin, manifest, spec.name);
  if (!calls.input_shape) {
    w.fail("the model's input '" + inputs[0].layer + "' is not an InputLayer of its layers");
  }
  const Numbered numbered = number_calls(calls, outputs[0], counts_own_calls, origin);
  const std::vector<size_t> order = call_order(numbered, calls.layers, w);
  check_all_lead_to_output(numbered, calls.layers, outputs[0].layer, w);
  std::vector<size_t> position(order.size());
  for (size_t p = 0; p < order.size(); ++p) {
    position[order[p]] = p;
  }
  Graph graph;
  for (const size_t n : order) {
    GraphNode node{numbered.layer_of[n], {}};
    for (const size_t f : numbered.from[n]) {
      node.inputs.push_back(position[f]);
    }
    graph.nodes.push_back(std::move(node));
  }
  graph.output = position[numbered.output];
  spec.layers = std::move(calls.layers);
  spec.input_shape = std::move(*calls.input_shape);
  spec.graph = std::move(graph);
  return spec;
}

}  // namespace mnist::tfjs
