// TF.js Layers format, reading: model.json (its topology through
// topology.cpp), the weights manifest and its weight files -> the Model's
// tensors (through layout.hpp).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <utility>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/tfjs_io.hpp"
#include "tfjs_io/layout.hpp"
#include "tfjs_io/reading.hpp"

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace mnist {

namespace {

using tfjs::find;
using tfjs::Where;

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

/// model.json: `path` itself, or the file in the folder `path`; it must
/// exist.
fs::path model_json_path(const std::string& path) {
  fs::path json_path(path);
  std::error_code ec;
  if (fs::is_directory(json_path, ec)) {
    json_path /= kModelJsonFile;
  }
  if (!fs::exists(json_path, ec)) {
    throw IoError(json_path.string() +
                  ": cannot open the model (No such file or directory); expected a "
                  "folder holding model.json and its weight files");
  }
  return json_path;
}

/// A Layers model's model.json: its topology and weights manifest.
struct Document {
  const ordered_json& topology;
  const ordered_json& manifest;  ///< an array of weight groups
};

/// Checks that `doc` is a Layers model's model.json.
Document check_document(const ordered_json& doc, const Where& w) {
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
  return {*topology, *manifest};
}

/// The model of the document's topology and metadata, its weights left for
/// the manifest to fill.
Model make_model(const ordered_json& doc, const Document& parts, const Where& w) {
  ModelSpec spec = parse_topology(parts.topology, w.file, parts.manifest);
  if (const ordered_json* metadata = find(doc, "userDefinedMetadata")) {
    if (!metadata->is_object()) {
      w.fail("\"userDefinedMetadata\" is not a JSON object");
    }
    spec.metadata = *metadata;
  }
  try {
    return Model(std::move(spec), WeightInit::kForLoad);
  } catch (const FormatError& e) {  // a shape or value that does not work out
    w.fail(e.what());
  }
}

/// The compile() settings model.save(..., {includeOptimizer: true})
/// writes: the optimizer's class and config.
void read_optimizer_config(const ordered_json& doc, ModelImpl::SavedOptimizer& saved) {
  if (const ordered_json* training = find(doc, "trainingConfig")) {
    if (const ordered_json* optimizer = find(*training, "optimizer_config")) {
      if (const ordered_json* cls = find(*optimizer, "class_name"); cls && cls->is_string()) {
        saved.class_name = cls->get<std::string>();
      }
      if (const ordered_json* config = find(*optimizer, "config"); config && config->is_object()) {
        saved.config = *config;
      }
    }
  }
}

/// A manifest entry, checked: its name, shape and encoding, and where its
/// bytes are in its group's.
struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  uint64_t offset;
  uint64_t count;
  WeightEncoding encoding;
  bool optimizer;  ///< "group": "optimizer": read past, not loaded
};

/// Checks a manifest entry (name, dtype, quantization, shape) whose bytes
/// start at `offset` in its group's.
Entry read_entry(const ordered_json& spec, const std::string& file, uint64_t offset) {
  Where ew{file, "weight " + (find(spec, "name") ? spec["name"].dump() : std::string("?"))};
  if (!spec.is_object() || find(spec, "name") == nullptr || !spec["name"].is_string()) {
    ew.fail("expected an object with \"name\", \"shape\" and \"dtype\"");
  }
  const std::string name = spec["name"].get<std::string>();
  const ordered_json* dtype = find(spec, "dtype");
  // includeOptimizer's weights ("iter" is an int32 scalar); 4 bytes each.
  const bool optimizer = find(spec, "group") != nullptr && spec["group"] == "optimizer";
  if (optimizer && dtype != nullptr && *dtype == "int32" && find(spec, "quantization") == nullptr) {
    // counted as float32-sized values by the caller
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
    if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > (int64_t{1} << 31)) {
      ew.fail("bad shape " + shape->dump());
    }
    dims.push_back(d.get<int64_t>());
    count *= static_cast<uint64_t>(dims.back());
    if (count > (uint64_t{1} << 31)) {
      ew.fail("shape " + shape->dump() + " is too large");
    }
  }
  return {name, dims, offset, count, encoding, optimizer};
}

/// A manifest group: its entries, checked, and the bytes of its files.
struct Group {
  std::vector<Entry> entries;
  std::vector<char> bytes;
};

/// Reads group `g` of the manifest of model.json `json_path`: every entry
/// is checked before its files are read.
Group read_manifest_group(const ordered_json& group, size_t g, const fs::path& json_path) {
  const std::string file = json_path.string();
  Where gw{file, "weightsManifest[" + std::to_string(g) + "]"};
  const ordered_json* specs = find(group, "weights");
  const ordered_json* paths = find(group, "paths");
  if (specs == nullptr || !specs->is_array() || paths == nullptr) {
    gw.fail("expected \"paths\" and \"weights\"");
  }
  Group out;
  uint64_t needed = 0;
  for (const auto& spec : *specs) {
    const Entry& e = out.entries.emplace_back(read_entry(spec, file, needed));
    needed += e.count * bytes_per_value(e.encoding.storage);
  }
  out.bytes = read_group(json_path.parent_path(), *paths, needed, gw);
  return out;
}

/// Entry `e`'s values in its group's `bytes`, decoded as tfjs-core's
/// decodeWeights does, into a tensor of the model's layout.
void copy_entry(const Entry& e,
                const std::vector<char>& bytes,
                at::Tensor& into,
                WeightLayout layout,
                const Where& ew) {
  const bool finite =
      e.encoding.storage == WeightStorage::kFloat32
          ? tfjs::copy_tfjs_weight(bytes.data() + e.offset, into, layout)
          : tfjs::copy_tfjs_weight(
                decode_weight_values(bytes.data() + e.offset, e.count, e.encoding), into, layout);
  if (!finite) {
    ew.fail("holds NaN or infinite values");
  }
}

/// The model's weights by TF.js name, and which of them the manifest has
/// filled.
struct Targets {
  std::map<std::string, ModelWeight> weights;
  std::map<std::string, bool> loaded;
};

/// An entry of includeOptimizer's group into the saved optimizer state:
/// "iter", then "<weight>/<slot>" shaped as the weight (any other entry is
/// counted but of no use).
void load_optimizer_entry(const Entry& e,
                          const std::vector<char>& bytes,
                          const Targets& targets,
                          ModelImpl::SavedOptimizer& saved,
                          const Where& ew) {
  ++saved.count;
  if (e.name == "iter" && e.shape.empty() && e.encoding.storage == WeightStorage::kFloat32) {
    int32_t iter = 0;
    std::memcpy(&iter, bytes.data() + e.offset, sizeof iter);  // int32, little-endian
    saved.weights.emplace_back(e.name, at::scalar_tensor(int64_t{iter}, at::kLong));
    return;
  }
  const size_t slash = e.name.rfind('/');
  const auto of = slash == std::string::npos ? targets.weights.end()
                                             : targets.weights.find(e.name.substr(0, slash));
  if (of == targets.weights.end() ||
      e.shape != tfjs::tfjs_view(of->second.tensor, of->second.layout).sizes().vec()) {
    return;  // not a slot of one of the model's weights: of no use
  }
  at::Tensor slot = at::empty_like(of->second.tensor);
  copy_entry(e, bytes, slot, of->second.layout, ew);
  saved.weights.emplace_back(e.name, slot);
}

/// An entry into the model's weight of its name, once; Keras 3 names a
/// weight by its path, "<model name>/<layer name>/kernel"
/// (tensorflowjs_converter keeps it), TF.js "<layer name>/kernel".
void load_weight_entry(const Entry& e,
                       const std::vector<char>& bytes,
                       const std::string& model_name,
                       Targets& targets,
                       const Where& ew) {
  auto it = targets.weights.find(e.name);
  if (it == targets.weights.end() && !model_name.empty() &&
      e.name.rfind(model_name + "/", 0) == 0) {
    it = targets.weights.find(e.name.substr(model_name.size() + 1));
  }
  if (it == targets.weights.end()) {
    ew.fail(
        "the model has no such weight (names are \"<layer name>/kernel\", "
        "\"<layer name>/bias\" and, by layer class, /gamma, /depthwise_kernel, ...; "
        "Keras 3's \"<model name>/<layer name>/kernel\" too)");
  }
  if (targets.loaded[it->first]) {
    ew.fail("appears twice in the manifest (as \"" + it->first + "\")");
  }
  at::Tensor& target = it->second.tensor;
  const WeightLayout layout = it->second.layout;
  const std::vector<int64_t> expected = tfjs::tfjs_view(target, layout).sizes().vec();
  if (e.shape != expected) {
    ew.fail("shape " + ordered_json(e.shape).dump() + " does not match the layer's " +
            ordered_json(expected).dump());
  }
  copy_entry(e, bytes, target, layout, ew);
  targets.loaded[it->first] = true;
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

Model load_tfjs(const std::string& path) {
  const fs::path json_path = model_json_path(path);
  const std::string file = json_path.string();
  const ordered_json doc = read_json_file(file);
  const Where w{file, ""};
  const Document parts = check_document(doc, w);
  Model model = make_model(doc, parts, w);
  read_optimizer_config(doc, model->saved_optimizer);
  Targets targets;
  for (ModelWeight& weight : model->manifest_weights()) {
    targets.weights.emplace(weight.name, std::move(weight));
  }
  for (size_t g = 0; g < parts.manifest.size(); ++g) {
    const Group group = read_manifest_group(parts.manifest[g], g, json_path);
    for (const Entry& e : group.entries) {
      const Where ew{file, "weight \"" + e.name + "\""};
      if (e.optimizer) {
        load_optimizer_entry(e, group.bytes, targets, model->saved_optimizer, ew);
      } else {
        load_weight_entry(e, group.bytes, model->spec().name, targets, ew);
      }
    }
  }
  for (const auto& [name, weight] : targets.weights) {
    if (!targets.loaded[name]) {
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
