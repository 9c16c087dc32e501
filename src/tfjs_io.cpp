// TF.js Layers format writer: topology JSON, weights manifest, weights.bin
// and atomic file replacement. All libtorch <-> TF.js layout conversions
// live here.
#include "mnist/tfjs_io.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"

#ifndef MNIST_VERSION
#define MNIST_VERSION "0.0.0"
#endif

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace mnist {

void sync_dir(const std::string& dir) {
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

bool process_gone(const std::string& pid_text) {
  if (pid_text.empty() || pid_text.size() > 9 ||
      pid_text.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const auto pid = static_cast<pid_t>(std::stol(pid_text));
  return pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH);
}

namespace {

/// The axis order that turns a libtorch parameter into TF.js layout: conv
/// [O,I,H,W] -> [H,W,I,O], dense [out,in] -> [in,out], biases unchanged.
/// (No flatten-order permutation is needed: Model flattens in NHWC order.)
std::vector<int64_t> tfjs_axes(int64_t dim) {
  if (dim == 4) {
    return {2, 3, 1, 0};
  }
  if (dim == 2) {
    return {1, 0};
  }
  return {0};
}

/// A parameter as a TF.js view (no copy).
at::Tensor tfjs_view(const at::Tensor& p) { return p.permute(tfjs_axes(p.dim())); }

bool little_endian() {
  const uint32_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

[[noreturn]] void io_fail(const std::string& path, const std::string& what, int err) {
  throw IoError(path + ": " + what + " (" + std::strerror(err) + ")");
}

void write_all(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      io_fail(path, "cannot write", errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void write_atomic(const std::string& path, const char* data, size_t size) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : ".";
  const std::string tmp =
      (dir / ("." + target.filename().string() + ".tmp." +
              std::to_string(::getpid())))
          .string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    io_fail(tmp, "cannot create temporary file", errno);
  }
  try {
    write_all(fd, data, size, tmp);
    if (::fsync(fd) != 0) {
      io_fail(tmp, "cannot flush to disk", errno);
    }
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    io_fail(tmp, "cannot close", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    io_fail(path, "cannot replace with the new file", err);
  }
  sync_dir(dir);  // make the rename itself durable
}

}  // namespace

namespace {

ordered_json variance_scaling() {
  return {{"class_name", "VarianceScaling"},
          {"config", {{"scale", 1}, {"mode", "fan_avg"}, {"distribution", "normal"}, {"seed", nullptr}}}};
}

ordered_json zeros() { return {{"class_name", "Zeros"}, {"config", ordered_json::object()}}; }

std::string padding_name(const Layer& l) { return l.same_padding ? "same" : "valid"; }

/// A layer's config with TF.js 4.22's keys in TF.js's order.
ordered_json generated_config(const Layer& l) {
  ordered_json c;
  switch (l.kind) {
    case LayerKind::kConv2D:
      c["filters"] = l.units;
      c["kernel_initializer"] = variance_scaling();
      c["kernel_regularizer"] = nullptr;
      c["kernel_constraint"] = nullptr;
      c["kernel_size"] = {l.kernel[0], l.kernel[1]};
      c["strides"] = {l.strides[0], l.strides[1]};
      c["padding"] = padding_name(l);
      c["data_format"] = "channels_last";
      c["dilation_rate"] = {1, 1};
      c["activation"] = activation_name(l.activation);
      c["use_bias"] = l.use_bias;
      c["bias_initializer"] = zeros();
      c["bias_regularizer"] = nullptr;
      c["activity_regularizer"] = nullptr;
      c["bias_constraint"] = nullptr;
      break;
    case LayerKind::kMaxPooling2D:
    case LayerKind::kAveragePooling2D:
      c["pool_size"] = {l.kernel[0], l.kernel[1]};
      c["padding"] = padding_name(l);
      c["strides"] = {l.strides[0], l.strides[1]};
      c["data_format"] = "channels_last";
      break;
    case LayerKind::kFlatten:
      break;
    case LayerKind::kDropout:
      c["rate"] = l.rate;
      c["noise_shape"] = nullptr;
      c["seed"] = nullptr;
      break;
    case LayerKind::kDense:
      c["units"] = l.units;
      c["activation"] = activation_name(l.activation);
      c["use_bias"] = l.use_bias;
      c["kernel_initializer"] = variance_scaling();
      c["bias_initializer"] = zeros();
      c["kernel_regularizer"] = nullptr;
      c["bias_regularizer"] = nullptr;
      c["activity_regularizer"] = nullptr;
      c["kernel_constraint"] = nullptr;
      c["bias_constraint"] = nullptr;
      break;
    case LayerKind::kActivation:
      c["activation"] = activation_name(l.activation);
      break;
  }
  c["name"] = l.name;
  c["trainable"] = true;
  return c;
}

// ---- Reading --------------------------------------------------------------

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
std::array<int64_t, 2> get_pair(const ordered_json& c, const char* key, const Where& w,
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
  if (!entry.is_object() || find(entry, "class_name") == nullptr || !entry["class_name"].is_string()) {
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
  if (cls == "Conv2D") {
    l.kind = LayerKind::kConv2D;
    require_channels_last(c, w);
    l.units = get_int(c, "filters", w);
    l.kernel = get_pair(c, "kernel_size", w, {0, 0});
    l.strides = get_pair(c, "strides", w, {1, 1});
    if (get_pair(c, "dilation_rate", w, {1, 1}) != std::array<int64_t, 2>{1, 1}) {
      w.fail("field \"dilation_rate\" must be 1 (dilated convolutions are not supported)");
    }
    l.same_padding = same_padding(c, w);
    l.activation = get_activation(c, w);
    l.use_bias = find(c, "use_bias") == nullptr || c["use_bias"].get<bool>();
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
    l.use_bias = find(c, "use_bias") == nullptr || c["use_bias"].get<bool>();
  } else if (cls == "Activation") {
    l.kind = LayerKind::kActivation;
    l.activation = get_activation(c, w);
  } else {
    w.fail("layer class " + cls + " is not supported (supported: Conv2D, MaxPooling2D, "
           "AveragePooling2D, Flatten, Dropout, Dense, Activation)");
  }
  return l;
}

/// The bytes of one weight group: its files, concatenated in order.
std::vector<char> read_group(const fs::path& dir, const ordered_json& paths, uint64_t expected,
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
    const fs::path rel(p.get<std::string>());
    bool escapes = rel.empty() || rel.is_absolute();
    for (const auto& part : rel) {
      escapes = escapes || part == "..";
    }
    if (escapes) {
      w.fail("weight path \"" + rel.string() + "\" is absolute or leaves the model folder");
    }
    const fs::path file = dir / rel;
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
    w.fail("the weight files hold " + std::to_string(total) + " bytes, but the manifest's "
           "weights need " + std::to_string(expected) + " bytes");
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

ordered_json read_json_file(const std::string& path) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) {
    throw IoError(path + ": cannot read (" + ec.message() + ")");
  }
  if (size > kMaxJsonBytes) {
    throw FormatError(path + ": " + std::to_string(size) + " bytes is too large for a JSON file "
                      "here (at most " + std::to_string(kMaxJsonBytes) + ")");
  }
  std::ifstream in(path, std::ios::binary);
  std::string text(static_cast<size_t>(size), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) {
    throw IoError(path + ": cannot read " + std::to_string(size) + " bytes");
  }
  // Nesting depth, outside strings, before the (recursive) parser sees it.
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw FormatError(path + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                          " levels (at byte " + std::to_string(i) + ")");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  try {
    return ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": not valid JSON (" + e.what() + ")");
  }
}

std::string generated_by() { return std::string("mnist-train v") + MNIST_VERSION; }

ordered_json model_topology(const ModelSpec& spec) {
  ordered_json layers = ordered_json::array();
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const Layer& l = spec.layers[i];
    ordered_json config = l.config.is_object() ? l.config : generated_config(l);
    if (i == 0 && !config.contains("batch_input_shape") && !config.contains("input_shape")) {
      config["batch_input_shape"] = {nullptr, 28, 28, 1};
      config["dtype"] = "float32";
    }
    layers.push_back({{"class_name", class_name(l.kind)}, {"config", config}});
  }
  ordered_json topology;
  topology["class_name"] = "Sequential";
  topology["config"] = {{"name", spec.name}, {"layers", layers}};
  topology["keras_version"] = "tfjs-layers 4.22.0";
  topology["backend"] = "tensor_flow.js";
  return topology;
}

ordered_json model_json(const Model& model) {
  ordered_json weights = ordered_json::array();
  for (const auto& [name, tensor] : model->tfjs_weights()) {
    ordered_json spec;
    spec["name"] = name;
    spec["shape"] = tfjs_view(tensor).sizes().vec();
    spec["dtype"] = "float32";
    weights.push_back(spec);
  }
  ordered_json doc;
  doc["modelTopology"] = model_topology(model->spec());
  doc["weightsManifest"] = ordered_json::array({{{"paths", {kWeightsFile}}, {"weights", weights}}});
  doc["format"] = "layers-model";
  doc["generatedBy"] = generated_by();
  doc["convertedBy"] = nullptr;
  return doc;
}

std::vector<char> weights_bin(const Model& model) {
  std::vector<char> bytes;
  for (const auto& named : model->tfjs_weights()) {
    const at::Tensor t = tfjs_view(named.second.detach()).to(at::kCPU, at::kFloat).contiguous();
    const auto* data = static_cast<const char*>(t.data_ptr());
    const size_t size = static_cast<size_t>(t.numel()) * sizeof(float);
    const size_t offset = bytes.size();
    bytes.insert(bytes.end(), data, data + size);
    if (!little_endian()) {
      for (size_t i = offset; i < bytes.size(); i += 4) {
        std::swap(bytes[i], bytes[i + 3]);
        std::swap(bytes[i + 1], bytes[i + 2]);
      }
    }
  }
  return bytes;
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
    w.fail("class " + cls->dump() + " is not supported (only Sequential models load; a "
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
    throw IoError(file + ": cannot open the model (No such file or directory); expected a "
                  "folder holding model.json and its weight files");
  }
  const ordered_json doc = read_json_file(file);
  Where w{file, ""};
  if (!doc.is_object()) {
    w.fail("expected a JSON object with modelTopology and weightsManifest");
  }
  if (const ordered_json* format = find(doc, "format"); format != nullptr && *format != "layers-model") {
    w.fail("format is " + format->dump() + " (expected \"layers-model\"; a graph model is "
           "loaded with tf.loadGraphModel, not by mnist-train)");
  }
  const ordered_json* topology = find(doc, "modelTopology");
  const ordered_json* manifest = find(doc, "weightsManifest");
  if (topology == nullptr || manifest == nullptr || !manifest->is_array()) {
    w.fail("missing \"modelTopology\" or \"weightsManifest\"");
  }
  Model model(parse_topology(*topology, file));

  std::map<std::string, at::Tensor> targets;
  for (const auto& [name, tensor] : model->tfjs_weights()) {
    targets.emplace(name, tensor);
  }
  std::map<std::string, bool> loaded;
  torch::NoGradGuard no_grad;
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
      if (dtype == nullptr || *dtype != "float32") {
        ew.fail("dtype " + (dtype ? dtype->dump() : std::string("missing")) +
                " is not supported (only float32)");
      }
      if (find(spec, "quantization") != nullptr) {
        ew.fail("quantized weights are not supported");
      }
      const ordered_json* shape = find(spec, "shape");
      if (shape == nullptr || !shape->is_array()) {
        ew.fail("missing \"shape\"");
      }
      std::vector<int64_t> dims;
      uint64_t count = 1;
      for (const auto& d : *shape) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > (int64_t{1} << 31)) {
          ew.fail("bad shape " + shape->dump());
        }
        dims.push_back(d.get<int64_t>());
        count *= static_cast<uint64_t>(dims.back());
        if (count > (uint64_t{1} << 31)) {
          ew.fail("shape " + shape->dump() + " is too large");
        }
      }
      entries.push_back({name, dims, needed});
      needed += count * sizeof(float);
    }
    const std::vector<char> bytes = read_group(json_path.parent_path(), *paths, needed, gw);
    for (const Entry& e : entries) {
      Where ew{file, "weight \"" + e.name + "\""};
      const auto it = targets.find(e.name);
      if (it == targets.end()) {
        ew.fail("the model has no such weight (names are \"<layer name>/kernel\" and "
                "\"<layer name>/bias\")");
      }
      if (loaded[e.name]) {
        ew.fail("appears twice in the manifest");
      }
      at::Tensor& target = it->second;
      const std::vector<int64_t> expected = tfjs_view(target).sizes().vec();
      if (e.shape != expected) {
        ew.fail("shape " + ordered_json(e.shape).dump() + " does not match the layer's " +
                ordered_json(expected).dump());
      }
      at::Tensor value = at::empty(e.shape, at::kFloat);
      std::memcpy(value.data_ptr(), bytes.data() + e.offset,
                  static_cast<size_t>(value.numel()) * sizeof(float));
      if (!little_endian()) {
        auto* raw = static_cast<char*>(value.data_ptr());
        for (int64_t i = 0; i < value.numel() * 4; i += 4) {
          std::swap(raw[i], raw[i + 3]);
          std::swap(raw[i + 1], raw[i + 2]);
        }
      }
      if (!at::isfinite(value).all().item<bool>()) {
        ew.fail("holds NaN or infinite values");
      }
      tfjs_view(target).copy_(value);
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


void ensure_writable_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw IoError(dir + ": cannot create the model folder (" + ec.message() +
                  "); choose another --model-save-path");
  }
  if (!fs::is_directory(dir, ec)) {
    throw IoError(dir + ": exists and is not a folder; choose another "
                        "--model-save-path");
  }
  const std::string probe =
      (fs::path(dir) / (".mnist-train-probe." + std::to_string(::getpid())))
          .string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw IoError(dir + ": cannot write in the model folder (" +
                  std::strerror(errno) + "); choose another --model-save-path");
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_atomic(path, bytes.data(), bytes.size());
}

void write_file_atomic(const std::string& path, const std::vector<char>& bytes) {
  write_atomic(path, bytes.data(), bytes.size());
}

namespace {

// While a model replaces another, its weights are also written under the name
// weights.new-<pid>-<n>.bin, which only a model.json of the new model names.
constexpr const char* kStagedPrefix = "weights.new-";
constexpr const char* kStagedSuffix = ".bin";

/// Removes from `dir` what killed saves left behind and nothing names: staged
/// weights (weights.new-<pid>-<n>.bin) and hidden temporary files
/// (.<file>.tmp.<pid>, .mnist-train-probe.<pid>) of processes that are gone.
/// Call only while model.json names weights.bin.
void remove_save_leftovers(const fs::path& dir) {
  std::vector<fs::path> stale;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::string pid;
    if (name.rfind(kStagedPrefix, 0) == 0 && name.size() > std::strlen(kStagedPrefix) + 4 &&
        name.compare(name.size() - 4, 4, kStagedSuffix) == 0) {
      const std::string middle = name.substr(std::strlen(kStagedPrefix));
      pid = middle.substr(0, middle.find('-'));
    } else if (name.rfind(".mnist-train-probe.", 0) == 0) {
      pid = name.substr(std::strlen(".mnist-train-probe."));
    } else if (name.size() > 1 && name[0] == '.' && name.find(".tmp.") != std::string::npos) {
      pid = name.substr(name.rfind(".tmp.") + 5);
    } else {
      continue;
    }
    std::error_code type_ec;
    if (process_gone(pid) && fs::is_regular_file(fs::symlink_status(it->path(), type_ec))) {
      stale.push_back(it->path());
    }
  }
  for (const fs::path& file : stale) {
    ::unlink(file.c_str());
  }
}

/// Replaces `to` with the file `from` (atomically: a hard link under a
/// temporary name renamed over `to`), or, where hard links are not
/// available, with `bytes` written again.
void replace_with(const fs::path& from, const fs::path& to, const std::vector<char>& bytes) {
  const fs::path dir = to.parent_path();
  const fs::path tmp = dir / ("." + to.filename().string() + ".tmp." + std::to_string(::getpid()));
  ::unlink(tmp.c_str());
  if (::link(from.c_str(), tmp.c_str()) != 0) {
    write_atomic(to.string(), bytes.data(), bytes.size());
    return;
  }
  if (::rename(tmp.c_str(), to.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    io_fail(to.string(), "cannot replace with the new file", err);
  }
  sync_dir(dir);
}

}  // namespace

void save_tfjs(const Model& model, const std::string& dir) {
  ensure_writable_dir(dir);
  const fs::path folder(dir);
  const std::vector<char> weights = weights_bin(model);
  const ordered_json doc = model_json(model);
  std::error_code ec;
  if (!fs::exists(folder / kModelJsonFile, ec)) {
    // No model here yet: until model.json is in place there is none.
    write_file_atomic((folder / kWeightsFile).string(), weights);
    write_file_atomic((folder / kModelJsonFile).string(), doc.dump());
    remove_save_leftovers(folder);
    return;
  }
  // Replacing a model: model.json and weights.bin are two files, and renaming
  // one then the other would leave, after a kill between the two, a model.json
  // with the other model's weights. So the new weights first go under a fresh
  // name that only the new model.json names; once that model.json is in
  // place, weights.bin is replaced and model.json rewritten to name it. Each
  // step is an atomic rename: a kill at any moment leaves the old model or
  // the new one (possibly still naming the staged file), plus files that
  // nothing names, removed by the next save.
  std::string staged;
  for (int n = 0; staged.empty() || fs::exists(folder / staged, ec); ++n) {
    staged = kStagedPrefix + std::to_string(::getpid()) + "-" + std::to_string(n) + kStagedSuffix;
  }
  write_file_atomic((folder / staged).string(), weights);
  ordered_json staged_doc = doc;
  staged_doc["weightsManifest"][0]["paths"] = ordered_json::array({staged});
  write_file_atomic((folder / kModelJsonFile).string(), staged_doc.dump());
  replace_with(folder / staged, folder / kWeightsFile, weights);
  write_file_atomic((folder / kModelJsonFile).string(), doc.dump());
  ::unlink((folder / staged).c_str());
  remove_save_leftovers(folder);
}

}  // namespace mnist
