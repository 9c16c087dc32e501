// Sequential models of registry layers (layers.hpp): building each layer for
// the shape before it, the weights it declares (made, initialised as TF.js
// does, in TF.js's manifest order), the forward pass, frozen layers, a new
// head, and TF.js's summary table.
#include "mnist/model.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"

namespace mnist {

GraphCalls graph_calls(const Graph& graph, size_t layers) {
  GraphCalls calls{std::vector<std::vector<size_t>>(layers),
                   std::vector<size_t>(graph.nodes.size())};
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    calls.call_index[n] = calls.nodes_of[graph.nodes[n].layer].size();
    calls.nodes_of[graph.nodes[n].layer].push_back(n);
  }
  return calls;
}

namespace {

/// tfjs-layers utils/layer_utils.ts printRow: each field is cut or padded so
/// that it ends at its column position; a field that reaches its column
/// gets its last character replaced by one separating space.
std::string format_row(const std::vector<std::string>& fields,
                       const std::vector<size_t>& positions) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) {
      line = line.substr(0, line.size() - 1) + " ";
    }
    line += fields[i];
    line = line.substr(0, positions[i]);
    line += std::string(positions[i] - line.size(), ' ');
  }
  return line;
}

[[noreturn]] void bad_layer(const Layer& layer, const std::string& what) {
  throw FormatError("layer " + layer.name + " (" + layer.class_name() + "): " + what);
}

/// Glorot uniform (TF.js's glorotUniform: VarianceScaling with scale 1,
/// mode fan_avg, distribution uniform): U(-limit, limit), limit
/// sqrt(6 / (fan_in + fan_out)).
void glorot_uniform_(at::Tensor weight, int64_t fan_in, int64_t fan_out) {
  torch::NoGradGuard no_grad;
  const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  weight.uniform_(-limit, limit);
}

/// A layer of the registry made from a config built here.
LayerPtr layer(const char* class_name, nlohmann::ordered_json config) {
  return make_layer(class_name, config);
}

}  // namespace

ModelSpec mnist_node_spec(bool with_dropout, int64_t classes) {
  auto conv = [](const char* name, int64_t filters) {
    return layer(
        "Conv2D",
        {{"name", name}, {"filters", filters}, {"kernel_size", 3}, {"activation", "relu"}});
  };
  auto pool = [](const char* name) {
    return layer("MaxPooling2D", {{"name", name}, {"pool_size", 2}, {"strides", 2}});
  };
  auto dense = [](const char* name, int64_t units, const char* activation) {
    return layer("Dense", {{"name", name}, {"units", units}, {"activation", activation}});
  };
  auto dropout = [](const char* name, double rate) {
    return layer("Dropout", {{"name", name}, {"rate", rate}});
  };
  ModelSpec spec;
  spec.layers = {conv("conv2d_Conv2D1", 32),
                 conv("conv2d_Conv2D2", 32),
                 pool("max_pooling2d_MaxPooling2D1"),
                 conv("conv2d_Conv2D3", 64),
                 conv("conv2d_Conv2D4", 64),
                 pool("max_pooling2d_MaxPooling2D2"),
                 layer("Flatten", {{"name", "flatten_Flatten1"}})};
  if (with_dropout) {
    spec.layers.push_back(dropout("dropout_Dropout1", 0.25));
  }
  spec.layers.push_back(dense("dense_Dense1", 512, "relu"));
  if (with_dropout) {
    spec.layers.push_back(dropout("dropout_Dropout2", 0.5));
  }
  spec.layers.push_back(dense("dense_Dense2", classes, "softmax"));
  return spec;
}

namespace {

/// A Sequential model's calls: each layer on the output of the one before.
Graph chain_of(size_t layers) {
  Graph graph;
  for (size_t i = 0; i < layers; ++i) {
    graph.nodes.push_back({i, i == 0 ? std::vector<size_t>{} : std::vector<size_t>{i - 1}});
  }
  graph.output = layers - 1;
  return graph;
}

}  // namespace

ModelImpl::ModelImpl(ModelSpec spec, WeightInit init) : spec_(std::move(spec)) {
  if (spec_.layers.empty()) {
    throw FormatError("the model has no layers");
  }
  graph_ = spec_.graph ? *spec_.graph : chain_of(spec_.layers.size());
  const size_t layer_count = spec_.layers.size();
  std::set<std::string> names;
  for (const LayerPtr& layer : spec_.layers) {
    const Layer& l = *layer;
    // Weights are found by layer name ("<layer>/kernel"), and libtorch
    // refuses empty or dotted parameter names.
    if (l.name.empty() || l.name.find('.') != std::string::npos) {
      bad_layer(l, "a layer name must be non-empty and without '.' (found \"" + l.name + "\")");
    }
    if (!names.insert(l.name).second) {
      bad_layer(l, "two layers have this name (layer names must be unique)");
    }
  }
  if (graph_.nodes.empty() || graph_.output >= graph_.nodes.size()) {
    throw FormatError("the model's graph has no output node");
  }
  // Each layer is built at its first call, for the shapes of its inputs; a
  // later call must bring the same shapes.
  weight_specs_.resize(layer_count);
  weights_.resize(layer_count);
  std::vector<size_t> first_node(layer_count, graph_.nodes.size());
  last_reader_.resize(graph_.nodes.size());
  for (size_t n = 0; n < graph_.nodes.size(); ++n) {
    const GraphNode& node = graph_.nodes[n];
    if (node.layer >= layer_count) {
      throw FormatError("the model's graph calls a layer it does not have");
    }
    Layer& l = *spec_.layers[node.layer];
    std::vector<Shape> inputs;
    for (const size_t from : node.inputs) {
      if (from >= n) {
        bad_layer(l, "a node takes an input that is not computed before it");
      }
      inputs.push_back(node_outputs_[from]);
      last_reader_[from] = n;
    }
    if (node.inputs.empty()) {
      inputs.push_back(spec_.input_shape);
    }
    last_reader_[n] = n;
    Shape output;
    if (first_node[node.layer] == graph_.nodes.size()) {
      first_node[node.layer] = n;
      l.input_shape = inputs.front();
      try {
        output = l.build(inputs, weight_specs_[node.layer]);
      } catch (const FormatError& e) {
        bad_layer(l, e.what());
      }
      l.output_shape = output;
    } else if (inputs != node_inputs_[first_node[node.layer]]) {
      std::string shapes;
      for (const Shape& shape : inputs) {
        shapes += (shapes.empty() ? "" : ", ") + shape_text(shape);
      }
      bad_layer(l, "called again on " + shapes +
                       ": a layer called at several nodes must get the same input shapes at "
                       "each here");
    } else {
      output = l.output_shape;
    }
    node_inputs_.push_back(std::move(inputs));
    node_outputs_.push_back(std::move(output));
  }
  // The weights, layer after layer (the order of the optimizer's slots and
  // of TF.js's manifest), refused before any tensor is made when there are
  // too many: a model.json can ask for any size.
  int64_t total = 0;  // weight values so far
  for (size_t i = 0; i < layer_count; ++i) {
    const Layer& l = *spec_.layers[i];
    if (first_node[i] == graph_.nodes.size()) {
      bad_layer(l, "the layer is not called in the model's graph");
    }
    for (const WeightSpec& w : weight_specs_[i]) {
      int64_t values = 1;
      for (const int64_t d : w.shape) {
        values = d > 0 && values > kMaxModelValues / d ? kMaxModelValues + 1 : values * d;
      }
      total += values;
      if (total > kMaxModelValues) {
        bad_layer(l, "the model's weights would hold more than " + std::to_string(kMaxModelValues) +
                         " values (weight \"" + w.name + "\" of shape " + "[" +
                         shape_text(w.shape).substr(6) + "): too large to load here");
      }
    }
    for (const WeightSpec& w : weight_specs_[i]) {
      weights_[i].push_back(register_parameter(l.weight_name(w), at::empty(w.shape),
                                               w.gradient && !w.frozen && l.trainable));
    }
  }
  softmax_at_end_ = spec_.layers[graph_.nodes[graph_.output].layer]->ends_in_softmax();
  if (init == WeightInit::kTfjs) {
    reset_tfjs();
  }
}

bool ModelImpl::regularized() const {
  for (const auto& specs : weight_specs_) {
    for (const WeightSpec& w : specs) {
      if (w.penalty.any()) {
        return true;
      }
    }
  }
  return false;
}

at::Tensor ModelImpl::regularization_loss() const {
  at::Tensor total = at::zeros({}, at::TensorOptions(device()).dtype(at::kFloat));
  for (size_t i = 0; i < weights_.size(); ++i) {
    for (size_t k = 0; k < weights_[i].size(); ++k) {
      // tfjs-layers regularizers.ts L1L2.apply: sum(l1 * |x|) + sum(l2 * x^2).
      const Penalty& penalty = weight_specs_[i][k].penalty;
      const at::Tensor& weight = weights_[i][k];
      if (penalty.l1 != 0.0) {
        total = total + (weight.abs() * penalty.l1).sum();
      }
      if (penalty.l2 != 0.0) {
        total = total + (weight.square() * penalty.l2).sum();
      }
    }
  }
  return total;
}

namespace {

/// A model of flat input takes images flattened in TF.js's NHWC order.
at::Tensor to_input(at::Tensor x, const Shape& input) {
  return input.size() == 1 && x.dim() == 4 ? x.permute({0, 2, 3, 1}).flatten(1) : x;
}

}  // namespace

at::Tensor ModelImpl::run(at::Tensor x, bool final_softmax) {
  x = to_input(std::move(x), spec_.input_shape);
  CallContext context;
  context.training = is_training();
  std::vector<at::Tensor> outputs(graph_.nodes.size());
  std::vector<at::Tensor> inputs;
  for (size_t n = 0; n < graph_.nodes.size(); ++n) {
    const GraphNode& node = graph_.nodes[n];
    inputs.clear();
    for (const size_t from : node.inputs) {
      inputs.push_back(outputs[from]);
    }
    for (const size_t from : node.inputs) {
      if (last_reader_[from] == n && from != graph_.output) {
        outputs[from].reset();  // read by no later node (maybe twice by this one)
      }
    }
    if (node.inputs.empty()) {
      inputs.push_back(x);
    }
    context.logits = !final_softmax && n == graph_.output;
    outputs[n] = spec_.layers[node.layer]->call(inputs, weights_[node.layer], context);
  }
  return outputs[graph_.output];
}

at::Tensor ModelImpl::forward(at::Tensor x) { return run(std::move(x), /*final_softmax=*/false); }

at::Tensor ModelImpl::predict(at::Tensor x) { return run(std::move(x), /*final_softmax=*/true); }

bool ModelImpl::sequential_like() const {
  // tfjs-layers isModelSequentialLike: at each depth one node of at most one
  // input, and no layer called twice; with one output, that is a chain.
  std::vector<int> calls(spec_.layers.size());
  std::vector<int> readers(graph_.nodes.size());
  for (const GraphNode& node : graph_.nodes) {
    if (node.inputs.size() > 1 || ++calls[node.layer] > 1) {
      return false;
    }
    for (const size_t from : node.inputs) {
      if (++readers[from] > 1) {
        return false;
      }
    }
  }
  return true;
}

void glorot_normal_truncated_(at::Tensor weight, int64_t fan_in, int64_t fan_out) {
  // tfjs-layers initializers.ts VarianceScaling (scale 1, fan_avg, normal):
  // stddev = sqrt(scale / ((fan_in + fan_out) / 2)), drawn with
  // truncatedNormal, which redraws values more than 2 stddev from the mean.
  torch::NoGradGuard no_grad;
  const double stddev = std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  weight.normal_(0.0, stddev);
  while (true) {
    const at::Tensor outside = weight.abs() > 2.0 * stddev;
    const int64_t count = outside.sum().item<int64_t>();
    if (count == 0) {
      break;
    }
    weight.masked_scatter_(outside, at::empty({count}, weight.options()).normal_(0.0, stddev));
  }
}

void ModelImpl::reset_tfjs() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < weights_.size(); ++i) {
    for (size_t k = 0; k < weights_[i].size(); ++k) {
      const at::Tensor& t = weights_[i][k];
      // tfjs-layers initializers.ts computeFans of TF.js's shape: conv
      // [kh,kw,in,out] (depthwise: out is the multiplier; pointwise: kh = kw
      // = 1), in*kh*kw and out*kh*kw; libtorch's [out,in,kh,kw] has the same
      // factors. Dense [out,in].
      const int64_t receptive = t.dim() == 4 ? t.size(2) * t.size(3) : 1;
      const int64_t fan_in = t.dim() >= 2 ? t.size(1) * receptive : t.size(0);
      const int64_t fan_out = t.size(0) * receptive;
      switch (weight_specs_[i][k].initializer) {
        case Initializer::kZeros:
          t.zero_();
          break;
        case Initializer::kOnes:
          t.fill_(1.0);
          break;
        case Initializer::kConstant:
          t.fill_(weight_specs_[i][k].value);
          break;
        case Initializer::kGlorotNormal:
          glorot_normal_truncated_(t, fan_in, fan_out);
          break;
        case Initializer::kGlorotUniform:
          glorot_uniform_(t, fan_in, fan_out);
          break;
      }
    }
  }
}

std::vector<ModelWeight> ModelImpl::manifest_weights() const {
  // TF.js's model.weights (what model.save writes, in this order): the
  // trainable weights of every layer, then the others (moving statistics,
  // the weights of frozen layers), each part in layer order.
  std::vector<ModelWeight> out;
  std::vector<ModelWeight> others;
  for (size_t i = 0; i < weights_.size(); ++i) {
    const Layer& l = *spec_.layers[i];
    for (size_t k = 0; k < weights_[i].size(); ++k) {
      const WeightSpec& w = weight_specs_[i][k];
      (l.trainable && w.gradient && !w.frozen ? out : others)
          .push_back({l.weight_name(w), weights_[i][k], w.layout});
    }
  }
  out.insert(out.end(), others.begin(), others.end());
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> ModelImpl::tfjs_weights() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (ModelWeight& w : manifest_weights()) {
    out.emplace_back(std::move(w.name), std::move(w.tensor));
  }
  return out;
}

at::Tensor ModelImpl::weight(const std::string& tfjs_name) const {
  for (const auto& [name, tensor] : tfjs_weights()) {
    if (name == tfjs_name) {
      return tensor;
    }
  }
  throw std::out_of_range("no weight named " + tfjs_name);
}

c10::Device ModelImpl::device() const {
  for (const auto& layer : weights_) {
    if (!layer.empty()) {
      return layer.front().device();
    }
  }
  return c10::Device(c10::kCPU);
}

void ModelImpl::set_trainable(size_t index, bool trainable) {
  spec_.layers.at(index)->set_trainable(trainable);
  for (size_t k = 0; k < weights_[index].size(); ++k) {
    weight_specs_[index][k].frozen = false;  // a nested model's layers follow it
    if (weight_specs_[index][k].gradient) {
      weights_[index][k].requires_grad_(trainable);
    }
  }
}

size_t ModelImpl::layer_index(const std::string& name_or_index) const {
  const auto& layers = spec_.layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i]->name == name_or_index) {
      return i;
    }
  }
  if (!name_or_index.empty() && name_or_index.size() < 10 &&
      name_or_index.find_first_not_of("0123456789") == std::string::npos) {
    const size_t i = std::stoul(name_or_index);
    if (i < layers.size()) {
      return i;
    }
  }
  std::string names;
  for (size_t i = 0; i < layers.size(); ++i) {
    names += (i > 0 ? ", " : "") + std::to_string(i) + " " + layers[i]->name;
  }
  throw ConfigError("no layer \"" + name_or_index + "\" in the model (its layers: " + names + ")");
}

size_t freeze_up_to(Model& model, const std::string& name_or_index) {
  const size_t last = model->layer_index(name_or_index);
  for (size_t i = 0; i <= last; ++i) {
    model->set_trainable(i, false);
  }
  return last + 1;
}

Model replace_head(const Model& model, int64_t units) {
  ModelSpec spec = model->spec();
  auto& layers = spec.layers;
  size_t head = layers.size();
  for (size_t i = layers.size(); i-- > 0;) {
    const std::string cls = layers[i]->class_name();
    if (cls == "Dense") {
      head = i;
      break;
    }
    if (cls != "Activation" && cls != "Dropout") {
      throw ConfigError("the model ends in layer " + layers[i]->name + " (" + cls +
                        "): a new head replaces the last Dense layer, which only Activation "
                        "and Dropout layers may follow");
    }
  }
  if (head == layers.size()) {
    throw ConfigError("the model has no Dense layer to replace");
  }
  size_t calls = 0;
  for (const GraphNode& node : model->graph().nodes) {
    calls += node.layer == head ? 1 : 0;
  }
  if (calls != 1) {
    throw ConfigError("the model's last Dense layer " + layers[head]->name + " is called " +
                      std::to_string(calls) + " times: a new head replaces a layer called once");
  }
  // The head again from its config with the new units: the config it was
  // read with (kept, for saving), or the one it writes.
  const Layer& old = *layers[head];
  const bool kept = old.config.is_object();
  nlohmann::ordered_json config = kept ? old.config : nlohmann::ordered_json::object();
  if (!kept) {
    old.write_config(config);
    config["name"] = old.name;
  }
  config["units"] = units;
  config["trainable"] = true;
  LayerPtr fresh_head = make_layer(old.class_name(), config);
  fresh_head->training_problem = old.training_problem;
  if (kept) {
    fresh_head->config = std::move(config);
  }
  layers[head] = std::move(fresh_head);
  const std::string prefix = layers[head]->name + "/";
  // Every weight drawn anew, as a new model's (the head's draws come after
  // those of the layers before it): the head's stay.
  Model fresh(std::move(spec));
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : fresh->tfjs_weights()) {
    if (name.compare(0, prefix.size(), prefix) != 0) {
      tensor.copy_(model->weight(name));
    }
  }
  // The saved optimizer state stays behind: it is the old head's.
  fresh->saved_optimizer.count = model->saved_optimizer.count;
  fresh->saved_optimizer.class_name = model->saved_optimizer.class_name;
  return fresh;
}

std::string input_mismatch(const Model& model, const Shape& images) {
  const Shape& input = model->spec().input_shape;
  int64_t values = 1;
  for (const int64_t d : images) {
    values *= d;
  }
  if (input == images || (input.size() == 1 && input[0] == values)) {
    return "";
  }
  return "the model's input is " + shape_text(input) + ", and the images are " +
         shape_text(images) + ": a model of these images takes " + shape_text(images) + " (or " +
         shape_text({values}) + ", flattened); images of other sizes cannot be given yet";
}

void check_input(const Model& model, const at::Tensor& images) {
  if (images.dim() != 4) {
    return;
  }
  const std::string problem =
      input_mismatch(model, {images.size(2), images.size(3), images.size(1)});
  if (!problem.empty()) {
    throw ConfigError(problem);
  }
}

int64_t model_outputs(const Model& model) {
  const auto& out = model->node_output_shape(model->graph().output);
  return out.size() == 1 ? out[0] : 0;
}

int64_t count_trainable_params(const Model& model) {
  int64_t total = 0;
  for (const auto& p : model->parameters()) {
    if (p.requires_grad()) {
      total += p.numel();
    }
  }
  return total;
}

int64_t count_params(const Model& model) {
  int64_t total = 0;
  for (const auto& p : model->parameters()) {
    total += p.numel();
  }
  return total;
}

std::string summary_text(const Model& model) {
  // tfjs-layers printSummary: a Sequential-like model in 90 columns ending
  // at 32%, 61%, 89% and 100% of the line; another in 115, ending at 24%,
  // 48%, 70%, 80% and 100%, with the inputs each layer receives.
  const bool sequential = model->sequential_like();
  const size_t line = sequential ? 90 : 115;
  const std::vector<size_t> positions =
      sequential ? std::vector<size_t>{28, 54, 80, 90} : std::vector<size_t>{27, 55, 80, 92, 115};
  std::vector<std::string> header = {"Layer (type)", "Input Shape", "Output shape", "Param #"};
  if (!sequential) {
    header.push_back("Receives inputs");
  }
  std::ostringstream out;
  out << std::string(line, '_') << "\n"
      << format_row(header, positions) << "\n"
      << std::string(line, '=') << "\n";
  const auto& layers = model->spec().layers;
  const Graph& graph = model->graph();
  const GraphCalls calls = graph_calls(graph, layers.size());
  const auto& nodes_of = calls.nodes_of;
  const auto& call_index = calls.call_index;
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = *layers[i];
    int64_t count = 0;
    for (const auto& p : model->layer_weights(i)) {
      count += p.numel();
    }
    // TF.js: each node's input shapes as a JSON list, the nodes joined by
    // ","; the output shape, or "multiple" where the nodes' differ.
    std::string inputs;
    std::string output = shape_text(model->node_output_shape(nodes_of[i].front()));
    std::vector<std::string> receives;
    if (l.own_calls() > 0) {  // TF.js's call of a nested model on its own input
      inputs = "[" + shape_text(l.input_shape) + "]";
    }
    for (const size_t n : nodes_of[i]) {
      std::string shapes;
      for (const Shape& shape : model->node_input_shapes(n)) {
        shapes += (shapes.empty() ? "" : ",") + shape_text(shape);
      }
      inputs += (inputs.empty() ? "[" : ",[") + shapes + "]";
      if (shape_text(model->node_output_shape(n)) != output) {
        output = "multiple";
      }
      for (const size_t from : graph.nodes[n].inputs) {
        const Layer& source = *layers[graph.nodes[from].layer];
        receives.push_back(source.name + "[" +
                           std::to_string(source.own_calls() + call_index[from]) + "][0]");
      }
    }
    std::vector<std::string> fields = {l.name + " (" + l.class_name() + ")", inputs, output,
                                       std::to_string(count)};
    if (!sequential) {
      fields.push_back(receives.empty() ? "" : receives.front());
    }
    out << format_row(fields, positions) << "\n";
    for (size_t r = 1; !sequential && r < receives.size(); ++r) {
      out << format_row({"", "", "", "", receives[r]}, positions) << "\n";
    }
    out << std::string(line, i + 1 == layers.size() ? '=' : '_') << "\n";
  }
  const int64_t total = count_params(model);
  const int64_t trainable = count_trainable_params(model);
  out << "Total params: " << total << "\n"
      << "Trainable params: " << trainable << "\n"
      << "Non-trainable params: " << total - trainable << "\n"
      << std::string(line, '_') << "\n";
  return out.str();
}

void to_channels_last(Model& model) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) {
    if (p.dim() == 4) {
      p.set_data(at::empty_like(p, at::MemoryFormat::ChannelsLast).copy_(p));
    }
  }
}

at::Tensor predict_proba(Model& model, at::Tensor images, int64_t batch_size) {
  check_input(model, images);
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const c10::Device device = model->device();
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += batch_size) {
    const int64_t len = std::min(batch_size, images.size(0) - start);
    parts.push_back(model->predict(images.narrow(0, start, len).to(device)).to(at::kFloat));
  }
  model->train(was_training);
  if (parts.empty()) {
    return at::empty({0, model_outputs(model)}, images.options());
  }
  return at::cat(parts).to(images.device());
}

}  // namespace mnist
