// TF.js Layers format, reading: topology -> ModelSpec (every field checked,
// errors naming the file, the layer and the field), the weights manifest and
// its weight files -> the Model's tensors (through layout.hpp).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <utility>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/tfjs_io.hpp"
#include "tfjs_io/layout.hpp"

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace mnist {

namespace {

/// Error context: the file and, once known, the layer or weight entry.
struct Where {
  std::string file;
  std::string entry;
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(file + (entry.empty() ? "" : ": " + entry) + ": " + what);
  }
};

const ordered_json* find(const ordered_json& object, const char* key) {
  if (!object.is_object()) {
    return nullptr;
  }
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

/// A manifest entry's "quantization" (absent: float32), as tfjs-core's
/// decodeWeights accepts it: {"dtype": "uint8"|"uint16", "min", "scale"} or
/// {"dtype": "float16"}; "original_dtype", when given, must be float32.
WeightEncoding parse_quantization(const ordered_json& spec, const Where& w) {
  const ordered_json* q = find(spec, "quantization");
  WeightEncoding encoding;
  if (q == nullptr) {
    return encoding;
  }
  const ordered_json* dtype = find(*q, "dtype");
  if (!q->is_object() || dtype == nullptr || !dtype->is_string()) {
    w.fail("\"quantization\" must be an object with a \"dtype\" (uint8, uint16 or float16)");
  }
  const std::string name = dtype->get<std::string>();
  if (name == "uint8" || name == "uint16") {
    encoding.storage = name == "uint8" ? WeightStorage::kUint8 : WeightStorage::kUint16;
    const ordered_json* min = find(*q, "min");
    const ordered_json* scale = find(*q, "scale");
    if (min == nullptr || scale == nullptr || !min->is_number() || !scale->is_number()) {
      w.fail("quantization " + name + " needs the numbers \"min\" and \"scale\"");
    }
    encoding.min = min->get<double>();
    encoding.scale = scale->get<double>();
    if (!std::isfinite(encoding.min) || !std::isfinite(encoding.scale)) {
      w.fail("quantization " + name + " has a min or scale that is not finite");
    }
  } else if (name == "float16") {
    encoding.storage = WeightStorage::kFloat16;
  } else {
    w.fail("quantization dtype " + dtype->dump() +
           " is not supported (TF.js reads uint8, uint16 and float16)");
  }
  if (const ordered_json* original = find(*q, "original_dtype");
      original != nullptr && *original != "float32") {
    w.fail("quantization original_dtype " + original->dump() + " is not supported (only float32)");
  }
  return encoding;
}

int64_t get_int(const ordered_json& c, const char* key, const Where& w, int64_t fallback = -1) {
  const ordered_json* v = find(c, key);
  if (v == nullptr) {
    if (fallback >= 0) {
      return fallback;
    }
    w.fail(std::string("missing field \"") + key + "\"");
  }
  if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > (int64_t{1} << 31)) {
    w.fail(std::string("field \"") + key + "\" must be a non-negative integer, found " + v->dump());
  }
  return v->get<int64_t>();
}

/// An int or a pair of ints ("kernel_size": 3 or [3,3]).
std::array<int64_t, 2> get_pair(const ordered_json& c,
                                const char* key,
                                const Where& w,
                                std::array<int64_t, 2> fallback) {
  const ordered_json* v = find(c, key);
  if (v == nullptr) {
    if (fallback[0] > 0) {
      return fallback;
    }
    w.fail(std::string("missing field \"") + key + "\"");
  }
  auto positive = [&](const ordered_json& x) {
    if (!x.is_number_integer() || x.get<int64_t>() < 1 || x.get<int64_t>() > 4096) {
      w.fail(std::string("field \"") + key + "\" must hold positive integers, found " + v->dump());
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
  w.fail(std::string("field \"") + key + "\" must be an integer or a pair, found " + v->dump());
}

bool same_padding(const ordered_json& c, const Where& w) {
  const ordered_json* v = find(c, "padding");
  if (v == nullptr || *v == "valid") {
    return false;
  }
  if (*v == "same") {
    return true;
  }
  w.fail("field \"padding\" is " + v->dump() + " (supported: \"valid\", \"same\")");
}

void require_channels_last(const ordered_json& c, const Where& w) {
  const ordered_json* v = find(c, "data_format");
  if (v != nullptr && *v != "channels_last") {
    w.fail("field \"data_format\" is " + v->dump() + " (only \"channels_last\" is supported)");
  }
}

/// A boolean field, `fallback` when absent or null.
bool get_bool(const ordered_json& c, const char* key, const Where& w, bool fallback) {
  const ordered_json* v = find(c, key);
  if (v == nullptr) {
    return fallback;
  }
  if (!v->is_boolean()) {
    w.fail(std::string("field \"") + key + "\" must be true or false, found " + v->dump());
  }
  return v->get<bool>();
}

Activation get_activation(const ordered_json& c, const Where& w) {
  const ordered_json* v = find(c, "activation");
  if (v == nullptr) {
    return Activation::kLinear;
  }
  for (Activation a : {Activation::kLinear, Activation::kRelu, Activation::kSoftmax,
                       Activation::kSigmoid, Activation::kTanh}) {
    if (*v == activation_name(a)) {
      return a;
    }
  }
  w.fail("field \"activation\" is " + v->dump() +
         " (supported: linear, relu, softmax, sigmoid, tanh)");
}

void check_input_shape(const ordered_json& c, const Where& w) {
  if (const ordered_json* v = find(c, "batch_input_shape")) {
    if (*v != ordered_json::array({nullptr, 28, 28, 1})) {
      w.fail("field \"batch_input_shape\" is " + v->dump() + " (expected [null,28,28,1])");
    }
  }
  if (const ordered_json* v = find(c, "input_shape")) {
    if (*v != ordered_json::array({28, 28, 1})) {
      w.fail("field \"input_shape\" is " + v->dump() + " (expected [28,28,1])");
    }
  }
}

Layer parse_layer(const ordered_json& entry, size_t index, const std::string& file) {
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
  const ordered_json& c = *cp;
  Layer l;
  if (const ordered_json* name = find(c, "name"); name != nullptr && name->is_string()) {
    l.name = name->get<std::string>();
  } else {
    w.fail("class " + cls + ": missing field \"name\"");
  }
  if (l.name.empty() || l.name.find_first_of("/.") != std::string::npos) {
    w.fail("layer name \"" + l.name + "\" is empty or holds '/' or '.'");
  }
  w.entry = "layer " + std::to_string(index) + " '" + l.name + "' (" + cls + ")";
  check_input_shape(c, w);
  l.config = c;  // kept as read (key order too), for saving again
  l.trainable = get_bool(c, "trainable", w, true);
  if (cls == "Conv2D" || cls == "DepthwiseConv2D" || cls == "SeparableConv2D") {
    l.kind = cls == "Conv2D"            ? LayerKind::kConv2D
             : cls == "DepthwiseConv2D" ? LayerKind::kDepthwiseConv2D
                                        : LayerKind::kSeparableConv2D;
    require_channels_last(c, w);
    if (l.kind != LayerKind::kDepthwiseConv2D) {
      l.units = get_int(c, "filters", w);
    }
    if (l.kind != LayerKind::kConv2D) {
      l.depth_multiplier = get_int(c, "depth_multiplier", w, 1);
    }
    l.kernel = get_pair(c, "kernel_size", w, {0, 0});
    l.strides = get_pair(c, "strides", w, {1, 1});
    l.dilation = get_pair(c, "dilation_rate", w, {1, 1});
    if (l.kind == LayerKind::kDepthwiseConv2D && l.dilation != std::array<int64_t, 2>{1, 1}) {
      // tfjs-layers convolutional_depthwise.ts: DepthwiseConv2D's call()
      // passes no dilation ("TODO(cais): Add support for dilation").
      w.fail("field \"dilation_rate\" is " + find(c, "dilation_rate")->dump() +
             ": TF.js ignores a DepthwiseConv2D's dilation rate, so this model would predict "
             "one thing in TF.js and another where it was made; only 1 is supported");
    }
    l.same_padding = same_padding(c, w);
    l.activation = get_activation(c, w);
    l.use_bias = get_bool(c, "use_bias", w, true);
  } else if (cls == "MaxPooling2D" || cls == "AveragePooling2D") {
    l.kind = cls == "MaxPooling2D" ? LayerKind::kMaxPooling2D : LayerKind::kAveragePooling2D;
    require_channels_last(c, w);
    l.kernel = get_pair(c, "pool_size", w, {2, 2});
    l.strides = get_pair(c, "strides", w, l.kernel);
    l.same_padding = same_padding(c, w);
  } else if (cls == "Flatten") {
    l.kind = LayerKind::kFlatten;
    require_channels_last(c, w);
  } else if (cls == "Dropout") {
    l.kind = LayerKind::kDropout;
    const ordered_json* rate = find(c, "rate");
    if (rate == nullptr || !rate->is_number()) {
      w.fail("field \"rate\" must be a number");
    }
    l.rate = rate->get<double>();
    if (find(c, "noise_shape") != nullptr) {
      w.fail("field \"noise_shape\" is not supported");
    }
  } else if (cls == "Dense") {
    l.kind = LayerKind::kDense;
    l.units = get_int(c, "units", w);
    l.activation = get_activation(c, w);
    l.use_bias = get_bool(c, "use_bias", w, true);
  } else if (cls == "Activation") {
    l.kind = LayerKind::kActivation;
    l.activation = get_activation(c, w);
  } else if (cls == "BatchNormalization") {
    l.kind = LayerKind::kBatchNormalization;
    if (const ordered_json* axis = find(c, "axis")) {
      // TF.js writes -1; Keras writes [3] after building the layer.
      const ordered_json& a = axis->is_array() && axis->size() == 1 ? (*axis)[0] : *axis;
      if (!a.is_number_integer() || a.get<int64_t>() < -1 || a.get<int64_t>() > 3) {
        w.fail("field \"axis\" is " + axis->dump() + " (only the channels axis, -1, is supported)");
      }
      l.axis = a.get<int64_t>();
    }
    for (auto [key, value] : {std::pair{"momentum", &l.momentum}, {"epsilon", &l.epsilon}}) {
      if (const ordered_json* v = find(c, key)) {
        if (!v->is_number()) {
          w.fail(std::string("field \"") + key + "\" must be a number, found " + v->dump());
        }
        *value = v->get<double>();
      }
    }
    l.center = get_bool(c, "center", w, true);
    l.scale = get_bool(c, "scale", w, true);
  } else if (cls == "GlobalAveragePooling2D" || cls == "GlobalMaxPooling2D") {
    l.kind = cls == "GlobalAveragePooling2D" ? LayerKind::kGlobalAveragePooling2D
                                             : LayerKind::kGlobalMaxPooling2D;
    require_channels_last(c, w);
    // Keras 2.6+ writes keepdims; TF.js 4.22 has no such option.
    if (const ordered_json* keep = find(c, "keepdims"); keep != nullptr && *keep != false) {
      w.fail("field \"keepdims\" is " + keep->dump() + " (only false is supported, as in TF.js)");
    }
  } else {
    w.fail("layer class " + cls +
           " is not supported (supported: Conv2D, DepthwiseConv2D, SeparableConv2D, MaxPooling2D, "
           "AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, BatchNormalization, "
           "Flatten, Dropout, Dense, Activation)");
  }
  // L1L2 regularizers of a layer's weights are applied in training, as
  // TF.js applies them; constraints, activity regularizers and other
  // regularizer classes change what training does and are not, so they are
  // kept (saved again) and a training refuses such a layer.
  // Which config key regularizes which weight (Penalty in model.hpp).
  std::vector<std::pair<std::string, Penalty*>> penalties;
  switch (l.kind) {
    case LayerKind::kConv2D:
    case LayerKind::kDense:
      penalties = {{"kernel_regularizer", &l.kernel_penalty},
                   {"bias_regularizer", &l.bias_penalty}};
      break;
    case LayerKind::kBatchNormalization:
      penalties = {{"gamma_regularizer", &l.kernel_penalty}, {"beta_regularizer", &l.bias_penalty}};
      break;
    case LayerKind::kSeparableConv2D:
      penalties = {{"pointwise_regularizer", &l.pointwise_penalty}};
      [[fallthrough]];
    case LayerKind::kDepthwiseConv2D:
      penalties.insert(penalties.end(), {{"depthwise_regularizer", &l.kernel_penalty},
                                         {"bias_regularizer", &l.bias_penalty}});
      break;
    default:
      break;
  }
  for (const auto& [key, value] : c.items()) {
    const auto ends_with = [&key = key](const std::string& tail) {
      return key.size() > tail.size() &&
             key.compare(key.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (value.is_null() || !(ends_with("_regularizer") || ends_with("_constraint"))) {
      continue;
    }
    const ordered_json* kind = find(value, "class_name");
    Penalty* penalty = nullptr;
    for (const auto& [name, target] : penalties) {
      if (key == name) {
        penalty = target;
      }
    }
    if (penalty != nullptr && kind != nullptr && *kind == "L1L2") {
      // regularizers.ts L1L2.fromConfig: a missing (or null) l1 or l2 is 0.01.
      const ordered_json* config = find(value, "config");
      for (auto [name, factor] : {std::pair{"l1", &penalty->l1}, {"l2", &penalty->l2}}) {
        const ordered_json* v = config != nullptr ? find(*config, name) : nullptr;
        if (v == nullptr || v->is_null()) {
          *factor = 0.01;
        } else if (v->is_number() && std::isfinite(v->get<double>()) && v->get<double>() >= 0.0) {
          *factor = v->get<double>();
        } else {
          w.fail("field \"" + key + "\": " + name + " must be a number of at least 0, found " +
                 v->dump());
        }
      }
      continue;
    }
    if (l.training_problem.empty()) {
      l.training_problem =
          "field \"" + key + "\" (" +
          (kind != nullptr && kind->is_string() ? kind->get<std::string>() : value.dump()) +
          ") is not applied in training by mnist-train (only L1L2 regularizers of its weights "
          "are)";
    }
  }
  return l;
}

/// TF.js 4.22's SeparableConv2D leaves "depth_multiplier" out of the config
/// it saves (and TF.js then fails to load its own model when the multiplier
/// is above 1): where the field is absent, it is the last axis of the
/// layer's depthwise kernel in the manifest, [kh,kw,in,depth_multiplier].
void infer_depth_multipliers(ModelSpec& spec, const ordered_json& manifest) {
  for (Layer& l : spec.layers) {
    if (l.kind != LayerKind::kSeparableConv2D || find(l.config, "depth_multiplier") != nullptr) {
      continue;
    }
    for (const auto& group : manifest) {
      const ordered_json* weights = find(group, "weights");
      for (const auto& entry :
           weights != nullptr && weights->is_array() ? *weights : ordered_json::array()) {
        const ordered_json* name = find(entry, "name");
        const ordered_json* shape = find(entry, "shape");
        if (name != nullptr && *name == l.name + "/depthwise_kernel" && shape != nullptr &&
            shape->is_array() && shape->size() == 4 && (*shape)[3].is_number_integer() &&
            (*shape)[3].get<int64_t>() >= 1 && (*shape)[3].get<int64_t>() <= (int64_t{1} << 16)) {
          l.depth_multiplier = (*shape)[3].get<int64_t>();
        }
      }
    }
  }
}

/// The bytes of one weight group: its files, concatenated in order.
std::vector<char> read_group(const fs::path& dir,
                             const ordered_json& paths,
                             uint64_t expected,
                             const Where& w) {
  if (!paths.is_array() || paths.empty()) {
    w.fail("\"paths\" must be a non-empty array of file names");
  }
  std::vector<std::pair<fs::path, uint64_t>> files;
  uint64_t total = 0;
  for (const auto& p : paths) {
    if (!p.is_string()) {
      w.fail("\"paths\" holds a non-string entry " + p.dump());
    }
    const WeightPath rel = check_weight_path(p.get<std::string>());
    if (!rel.problem.empty()) {
      w.fail("weight path " + p.dump() + " " + rel.problem);
    }
    const fs::path file = dir / rel.path;
    std::error_code ec;
    const uint64_t size = fs::file_size(file, ec);
    if (ec) {
      throw IoError(file.string() + ": cannot read the weight file named in the manifest (" +
                    ec.message() + ")");
    }
    files.emplace_back(file, size);
    total += size;
  }
  if (total != expected) {
    w.fail("the weight files hold " + std::to_string(total) +
           " bytes, but the manifest's "
           "weights need " +
           std::to_string(expected) + " bytes");
  }
  std::vector<char> bytes(total);
  size_t offset = 0;
  for (const auto& [file, size] : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in.read(bytes.data() + offset, static_cast<std::streamsize>(size))) {
      throw IoError(file.string() + ": cannot read " + std::to_string(size) + " bytes");
    }
    offset += size;
  }
  return bytes;
}
}  // namespace

WeightPath check_weight_path(const std::string& manifest_path) {
  std::string path = manifest_path;
  while (path.rfind("./", 0) == 0) {
    path.erase(0, 2);
  }
  if (is_plain_relative_path(path)) {
    return {path, ""};
  }
  std::string problem = "is not a plain relative path inside the model folder";
  if (manifest_path.empty()) {
    problem = "is empty";
  } else if (path.empty()) {
    problem = "names no file";
  } else if (path.front() == '/') {
    problem = "is absolute";
  } else if (("/" + path + "/").find("/../") != std::string::npos) {
    problem = "leaves the model folder";
  } else if (("/" + path + "/").find("//") != std::string::npos) {
    problem = "has an empty segment";
  } else if (("/" + path + "/").find("/./") != std::string::npos) {
    problem = "has a \".\" segment after its start";
  } else {
    problem = "holds a backslash or a control character";
  }
  return {"", problem};
}

ModelSpec parse_topology(const ordered_json& topology, const std::string& origin) {
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
  }
  if (layers == nullptr || !layers->is_array()) {
    w.fail("missing the \"layers\" array");
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    const ordered_json& entry = (*layers)[i];
    if (find(entry, "class_name") != nullptr && entry["class_name"] == "InputLayer") {
      if (const ordered_json* c = find(entry, "config")) {
        check_input_shape(*c, Where{origin, "layer " + std::to_string(i) + " (InputLayer)"});
      }
      continue;
    }
    spec.layers.push_back(parse_layer(entry, i, origin));
  }
  return spec;
}

Model load_tfjs(const std::string& path) {
  fs::path json_path(path);
  std::error_code ec;
  if (fs::is_directory(json_path, ec)) {
    json_path /= kModelJsonFile;
  }
  const std::string file = json_path.string();
  if (!fs::exists(json_path, ec)) {
    throw IoError(file +
                  ": cannot open the model (No such file or directory); expected a "
                  "folder holding model.json and its weight files");
  }
  const ordered_json doc = read_json_file(file);
  Where w{file, ""};
  if (!doc.is_object()) {
    w.fail("expected a JSON object with modelTopology and weightsManifest");
  }
  if (const ordered_json* format = find(doc, "format");
      format != nullptr && *format != "layers-model") {
    w.fail("format is " + format->dump() +
           " (expected \"layers-model\"; a graph model is "
           "loaded with tf.loadGraphModel, not by mnist-train)");
  }
  const ordered_json* topology = find(doc, "modelTopology");
  const ordered_json* manifest = find(doc, "weightsManifest");
  if (topology == nullptr || manifest == nullptr || !manifest->is_array()) {
    w.fail("missing \"modelTopology\" or \"weightsManifest\"");
  }
  ModelSpec spec = parse_topology(*topology, file);
  infer_depth_multipliers(spec, *manifest);
  if (const ordered_json* metadata = find(doc, "userDefinedMetadata")) {
    if (!metadata->is_object()) {
      w.fail("\"userDefinedMetadata\" is not a JSON object");
    }
    spec.metadata = *metadata;
  }
  Model model = [&] {
    try {
      return Model(std::move(spec));
    } catch (const FormatError& e) {  // a shape or value that does not work out
      w.fail(e.what());
    }
  }();
  // model.save(..., {includeOptimizer: true}) writes the compile() settings.
  if (const ordered_json* training = find(doc, "trainingConfig")) {
    if (const ordered_json* optimizer = find(*training, "optimizer_config")) {
      if (const ordered_json* cls = find(*optimizer, "class_name"); cls && cls->is_string()) {
        model->saved_optimizer.class_name = cls->get<std::string>();
      }
      if (const ordered_json* config = find(*optimizer, "config"); config && config->is_object()) {
        model->saved_optimizer.config = *config;
      }
    }
  }

  std::map<std::string, at::Tensor> targets;
  for (const auto& [name, tensor] : model->tfjs_weights()) {
    targets.emplace(name, tensor);
  }
  std::map<std::string, bool> loaded;
  for (size_t g = 0; g < manifest->size(); ++g) {
    const ordered_json& group = (*manifest)[g];
    Where gw{file, "weightsManifest[" + std::to_string(g) + "]"};
    const ordered_json* specs = find(group, "weights");
    const ordered_json* paths = find(group, "paths");
    if (specs == nullptr || !specs->is_array() || paths == nullptr) {
      gw.fail("expected \"paths\" and \"weights\"");
    }
    // First pass: names, dtypes, shapes and the bytes they need.
    struct Entry {
      std::string name;
      std::vector<int64_t> shape;
      uint64_t offset;
      uint64_t count;
      WeightEncoding encoding;
      bool optimizer;  ///< "group": "optimizer": read past, not loaded
    };
    std::vector<Entry> entries;
    uint64_t needed = 0;
    for (const auto& spec : *specs) {
      Where ew{file, "weight " + (find(spec, "name") ? spec["name"].dump() : std::string("?"))};
      if (!spec.is_object() || find(spec, "name") == nullptr || !spec["name"].is_string()) {
        ew.fail("expected an object with \"name\", \"shape\" and \"dtype\"");
      }
      const std::string name = spec["name"].get<std::string>();
      const ordered_json* dtype = find(spec, "dtype");
      // includeOptimizer's weights ("iter" is an int32 scalar); 4 bytes each.
      const bool optimizer = find(spec, "group") != nullptr && spec["group"] == "optimizer";
      if (optimizer && dtype != nullptr && *dtype == "int32" &&
          find(spec, "quantization") == nullptr) {
        // counted as float32-sized values below
      } else if (dtype == nullptr || *dtype != "float32") {
        ew.fail("dtype " + (dtype ? dtype->dump() : std::string("missing")) +
                " is not supported (only float32)");
      }
      const WeightEncoding encoding = parse_quantization(spec, ew);
      const ordered_json* shape = find(spec, "shape");
      if (shape == nullptr || !shape->is_array()) {
        ew.fail("missing \"shape\"");
      }
      std::vector<int64_t> dims;
      uint64_t count = 1;
      for (const auto& d : *shape) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0 ||
            d.get<int64_t>() > (int64_t{1} << 31)) {
          ew.fail("bad shape " + shape->dump());
        }
        dims.push_back(d.get<int64_t>());
        count *= static_cast<uint64_t>(dims.back());
        if (count > (uint64_t{1} << 31)) {
          ew.fail("shape " + shape->dump() + " is too large");
        }
      }
      entries.push_back({name, dims, needed, count, encoding, optimizer});
      needed += count * bytes_per_value(encoding.storage);
    }
    const std::vector<char> bytes = read_group(json_path.parent_path(), *paths, needed, gw);
    // An entry's values, decoded as tfjs-core's decodeWeights does, into a
    // tensor of the model's layout.
    const auto copy_entry = [&bytes](const Entry& e, at::Tensor& into, const Where& ew) {
      const bool finite =
          e.encoding.storage == WeightStorage::kFloat32
              ? tfjs::copy_tfjs_weight(bytes.data() + e.offset, into)
              : tfjs::copy_tfjs_weight(
                    decode_weight_values(bytes.data() + e.offset, e.count, e.encoding), into);
      if (!finite) {
        ew.fail("holds NaN or infinite values");
      }
    };
    for (const Entry& e : entries) {
      Where ew{file, "weight \"" + e.name + "\""};
      if (e.optimizer) {
        // includeOptimizer: "iter", then "<weight>/<slot>" shaped as the weight.
        auto& saved = model->saved_optimizer;
        ++saved.count;
        if (e.name == "iter" && e.shape.empty() && e.encoding.storage == WeightStorage::kFloat32) {
          int32_t iter = 0;
          std::memcpy(&iter, bytes.data() + e.offset, sizeof iter);  // int32, little-endian
          saved.weights.emplace_back(e.name, at::scalar_tensor(int64_t{iter}, at::kLong));
          continue;
        }
        const size_t slash = e.name.rfind('/');
        const auto of =
            slash == std::string::npos ? targets.end() : targets.find(e.name.substr(0, slash));
        if (of == targets.end() || e.shape != tfjs::tfjs_view(of->second).sizes().vec()) {
          continue;  // not a slot of one of the model's weights: of no use
        }
        at::Tensor slot = at::empty_like(of->second);
        copy_entry(e, slot, ew);
        saved.weights.emplace_back(e.name, slot);
        continue;
      }
      const auto it = targets.find(e.name);
      if (it == targets.end()) {
        ew.fail(
            "the model has no such weight (names are \"<layer name>/kernel\", "
            "\"<layer name>/bias\" and, by layer class, /gamma, /depthwise_kernel, ...)");
      }
      if (loaded[e.name]) {
        ew.fail("appears twice in the manifest");
      }
      at::Tensor& target = it->second;
      const std::vector<int64_t> expected = tfjs::tfjs_view(target).sizes().vec();
      if (e.shape != expected) {
        ew.fail("shape " + ordered_json(e.shape).dump() + " does not match the layer's " +
                ordered_json(expected).dump());
      }
      copy_entry(e, target, ew);
      loaded[e.name] = true;
    }
  }
  for (const auto& [name, tensor] : targets) {
    if (!loaded[name]) {
      w.fail("weight \"" + name + "\" of the model is missing from the manifest");
    }
  }
  return model;
}

std::vector<std::string> manifest_weight_files(const std::string& model_dir) {
  const ordered_json doc = read_json_file((fs::path(model_dir) / kModelJsonFile).string());
  std::vector<std::string> files;
  const ordered_json* manifest = find(doc, "weightsManifest");
  if (manifest == nullptr || !manifest->is_array()) {
    return files;
  }
  for (const auto& group : *manifest) {
    const ordered_json* paths = find(group, "paths");
    if (paths == nullptr || !paths->is_array()) {
      continue;
    }
    for (const auto& p : *paths) {
      if (p.is_string()) {
        const WeightPath checked = check_weight_path(p.get<std::string>());
        if (checked.problem.empty()) {
          files.push_back(checked.path);
        }
      }
    }
  }
  return files;
}

}  // namespace mnist
