// TF.js Layers format, writing: the topology key for key as TF.js 4.22 writes
// it, the weights manifest, weights.bin (through layout.hpp), Teachable
// Machine's metadata.json, and the crash-safe protocol that replaces a saved
// model (docs/design.md).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/tfjs_io.hpp"
#include "tfjs_io/layout.hpp"

#ifndef MNIST_VERSION
#define MNIST_VERSION "0.0.0"
#endif

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace mnist {

namespace {

// While a model replaces another, its weights are also written under the name
// weights.new-<pid>-<n>.bin, which only a model.json of the new model names.
constexpr const char* kStagedPrefix = "weights.new-";
constexpr const char* kStagedSuffix = ".bin";

/// The writer's pid in a staged weights name, or "".
std::string staged_pid(const std::string& name) {
  const size_t prefix = std::strlen(kStagedPrefix);
  if (name.rfind(kStagedPrefix, 0) != 0 || name.size() <= prefix + 4 ||
      name.compare(name.size() - 4, 4, kStagedSuffix) != 0) {
    return "";
  }
  const std::string middle = name.substr(prefix);
  return middle.substr(0, middle.find('-'));
}

/// Removes from `dir` what killed saves left behind and nothing names: staged
/// weights and temporary files of processes that are gone. Call only while
/// model.json names the final weight files (no staged ones).
void remove_save_leftovers(const std::string& dir) {
  remove_abandoned(dir, [](const std::string& name) {
    const std::string pid = staged_pid(name);
    return pid.empty() ? temporary_name_pid(name) : pid;
  });
}

}  // namespace

std::string generated_by() { return std::string("mnist-train v") + MNIST_VERSION; }

namespace {

/// The TF.js version whose Layers format the files are written in (the
/// topology's keras_version), metadata.json's "tfjsVersion".
constexpr const char* kTfjsVersion = "4.22.0";

}  // namespace

std::string iso_time_stamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  const size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  return std::string(text, n) + "." + std::to_string(1000 + millis).substr(1) + "Z";
}

ordered_json teachable_machine_metadata(const Model& model, const std::string& time_stamp) {
  const ModelSpec& spec = model->spec();
  const ordered_json& metadata = spec.metadata;
  const int64_t outputs = model_outputs(model);
  if (!metadata.is_object() || outputs <= 0) {
    return nullptr;
  }
  const auto names = metadata.find("classNames");
  if (names == metadata.end() || !names->is_array() ||
      static_cast<int64_t>(names->size()) != outputs ||
      !std::all_of(names->begin(), names->end(), [](const auto& v) { return v.is_string(); })) {
    return nullptr;
  }
  // Teachable Machine's Metadata interface (custom-mobilenet.ts), in its
  // order; its library reads labels, imageSize and grayscale.
  ordered_json doc;
  doc["tfjsVersion"] = kTfjsVersion;
  doc["packageVersion"] = MNIST_VERSION;
  doc["packageName"] = "mnist-train";
  doc["timeStamp"] = time_stamp;
  ordered_json user = ordered_json::object();
  const std::vector<int64_t>& in = spec.input_shape;
  const bool image = in.size() == 3;
  const char* color = !image ? nullptr : in[2] == 1 ? "grayscale" : in[2] == 3 ? "rgb" : nullptr;
  if (image) {
    // What the library cannot say: a non-square size, and the pixel range.
    // It feeds pixels / 127 - 1, in [-1, 1]; our models take [0, 1].
    user["imageSize"] = ordered_json::array({in[0], in[1]});
    if (color != nullptr) {
      user["colorMode"] = color;
    }
    user["inputRange"] = ordered_json::array({0, 1});
  }
  doc["userMetadata"] = user;
  doc["modelName"] = spec.name;
  doc["labels"] = *names;
  if (image && in[0] == in[1]) {
    doc["imageSize"] = in[0];  // the library crops a square of this side
  }
  if (color != nullptr) {
    doc["grayscale"] = in[2] == 1;
  }
  return doc;
}

namespace {

/// A functional model's "layers", "input_layers" and "output_layers" as
/// TF.js writes them: each layer with its calls' inputs, [[["<layer>",
/// <node>, 0, {}], ...], ...].
void write_graph(const ModelSpec& spec, const Graph& graph, ordered_json& config) {
  const GraphCalls calls = graph_calls(graph, spec.layers.size());
  const auto& nodes_of = calls.nodes_of;
  const auto& call_index = calls.call_index;
  const auto ref = [&](size_t node) {
    const Layer& from = *spec.layers[graph.nodes[node].layer];
    return ordered_json::array(
        {from.name, from.own_calls() + call_index[node], 0, ordered_json::object()});
  };
  ordered_json layers = ordered_json::array();
  std::string input;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const Layer& l = *spec.layers[i];
    ordered_json inbound = ordered_json::array();
    for (const size_t n : nodes_of[i]) {
      if (graph.nodes[n].inputs.empty()) {
        input = l.name;  // the InputLayer: no inbound node
        continue;
      }
      ordered_json node = ordered_json::array();
      for (const size_t from : graph.nodes[n].inputs) {
        node.push_back(ref(from));
      }
      inbound.push_back(node);
    }
    layers.push_back({{"name", l.name},
                      {"class_name", l.class_name()},
                      {"config", saved_config(l)},
                      {"inbound_nodes", inbound}});
  }
  ordered_json output = ref(graph.output);
  output.erase(3);
  config["layers"] = layers;
  config["input_layers"] = ordered_json::array({ordered_json::array({input, 0, 0})});
  config["output_layers"] = ordered_json::array({output});
}

}  // namespace

ordered_json model_topology(const ModelSpec& spec) {
  ordered_json topology;
  if (spec.graph) {
    ordered_json config = {{"name", spec.name}};
    write_graph(spec, *spec.graph, config);
    topology["class_name"] = "Model";
    topology["config"] = config;
  } else {
    ordered_json layers = ordered_json::array();
    for (size_t i = 0; i < spec.layers.size(); ++i) {
      const Layer& l = *spec.layers[i];
      ordered_json config = saved_config(l);
      if (i == 0 && !config.contains("batch_input_shape") && !config.contains("input_shape")) {
        config["batch_input_shape"] = ordered_json::array({nullptr});
        for (const int64_t d : spec.input_shape) {
          config["batch_input_shape"].push_back(d);
        }
        config["dtype"] = "float32";
      }
      layers.push_back({{"class_name", l.class_name()}, {"config", config}});
    }
    topology["class_name"] = "Sequential";
    topology["config"] = {{"name", spec.name}, {"layers", layers}};
  }
  topology["keras_version"] = "tfjs-layers 4.22.0";
  topology["backend"] = "tensor_flow.js";
  return topology;
}

namespace {

/// Every weight in manifest order, stored as `storage`.
std::vector<StoredWeight> stored_weights(const Model& model, WeightStorage storage) {
  std::vector<StoredWeight> out;
  for (const ModelWeight& weight : model->manifest_weights()) {
    std::vector<char> bytes;
    tfjs::append_tfjs_weight(bytes, weight.tensor, weight.layout);
    if (storage == WeightStorage::kFloat32) {
      out.push_back({std::move(bytes), {}});
    } else {
      // The float32 bytes are the tensor in TF.js order, little-endian.
      std::vector<float> values(bytes.size() / sizeof(float));
      std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
      out.push_back(store_weight_values(values, storage));
    }
  }
  return out;
}

ordered_json manifest_entries(const Model& model, const std::vector<StoredWeight>& stored) {
  ordered_json weights = ordered_json::array();
  size_t i = 0;
  for (const auto& [name, tensor, layout] : model->manifest_weights()) {
    ordered_json spec;
    spec["name"] = name;
    spec["shape"] = tfjs::tfjs_view(tensor, layout).sizes().vec();
    spec["dtype"] = "float32";
    const WeightEncoding& e = stored.at(i++).encoding;
    if (e.storage == WeightStorage::kFloat16) {
      spec["quantization"] = {{"dtype", "float16"}, {"original_dtype", "float32"}};
    } else if (e.storage != WeightStorage::kFloat32) {
      spec["quantization"] = {{"dtype", storage_name(e.storage)},
                              {"min", e.min},
                              {"scale", e.scale},
                              {"original_dtype", "float32"}};
    }
    weights.push_back(spec);
  }
  return weights;
}

ordered_json model_json_with(const Model& model,
                             const std::vector<StoredWeight>& stored,
                             const std::vector<std::string>& files) {
  const ordered_json weights = manifest_entries(model, stored);
  ordered_json doc;
  doc["modelTopology"] = model_topology(model->spec());
  doc["weightsManifest"] = ordered_json::array({{{"paths", files}, {"weights", weights}}});
  doc["format"] = "layers-model";
  doc["generatedBy"] = generated_by();
  doc["convertedBy"] = nullptr;
  if (model->spec().metadata.is_object()) {
    doc["userDefinedMetadata"] = model->spec().metadata;
  }
  return doc;
}

std::vector<char> concatenated(const std::vector<StoredWeight>& stored) {
  std::vector<char> bytes;
  for (const StoredWeight& w : stored) {
    bytes.insert(bytes.end(), w.bytes.begin(), w.bytes.end());
  }
  return bytes;
}

}  // namespace

ordered_json model_json(const Model& model, WeightStorage storage) {
  return model_json_with(model, stored_weights(model, storage), {kWeightsFile});
}

std::vector<char> weights_bin(const Model& model, WeightStorage storage) {
  return concatenated(stored_weights(model, storage));
}

uint64_t stored_weight_bytes(const Model& model, WeightStorage storage) {
  uint64_t values = 0;
  for (const auto& named : model->tfjs_weights()) {
    values += static_cast<uint64_t>(named.second.numel());
  }
  return values * bytes_per_value(storage);
}

std::vector<std::string> weight_file_names(uint64_t total, uint64_t shard_bytes) {
  if (shard_bytes == 0) {
    return {kWeightsFile};
  }
  const uint64_t count = std::max<uint64_t>(1, (total + shard_bytes - 1) / shard_bytes);
  std::vector<std::string> names;
  for (uint64_t k = 1; k <= count; ++k) {
    names.push_back("group1-shard" + std::to_string(k) + "of" + std::to_string(count) + ".bin");
  }
  return names;
}

std::optional<std::string> save_format_problem(const Model& model, const SaveFormat& format) {
  if (format.shard_bytes == 0) {
    return std::nullopt;
  }
  const uint64_t total = stored_weight_bytes(model, format.storage);
  const uint64_t count = (total + format.shard_bytes - 1) / format.shard_bytes;
  if (count <= kMaxWeightFiles) {
    return std::nullopt;
  }
  const uint64_t least = (total + kMaxWeightFiles - 1) / kMaxWeightFiles;
  return "--weight-shard-size " + std::to_string(format.shard_bytes) + " would cut the " +
         std::to_string(total) + " bytes of " + storage_name(format.storage) + " weights into " +
         std::to_string(count) + " files; at most " + std::to_string(kMaxWeightFiles) +
         " are written (use a size of at least " + std::to_string(least) + ")";
}

namespace {

/// Whether `name` is a weight file name mnist-train or TF.js's savers give
/// the files of a model: weights.bin, groupG-shardKofN.bin.
bool is_weight_file_name(const std::string& name) {
  if (name == kWeightsFile) {
    return true;
  }
  // group<digits>-shard<digits>of<digits>.bin
  size_t i = 0;
  const auto literal = [&](const char* text) {
    const size_t n = std::strlen(text);
    if (name.compare(i, n, text) != 0) {
      return false;
    }
    i += n;
    return true;
  };
  const auto digits = [&]() {
    const size_t start = i;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9') {
      ++i;
    }
    return i > start;
  };
  return literal("group") && digits() && literal("-shard") && digits() && literal("of") &&
         digits() && literal(".bin") && i == name.size();
}

/// After a save: removes the weight files of earlier models (weights.bin,
/// shards of another count) that model.json, now naming `files`, does not.
void remove_unnamed_weight_files(const std::string& dir, const std::vector<std::string>& files) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_weight_file_name(name) && it->is_regular_file(ec) && !it->is_symlink(ec) &&
        std::find(files.begin(), files.end(), name) == files.end()) {
      ::unlink(it->path().c_str());
    }
  }
}

/// The steps of save_tfjs; a failure in one says what the folder then holds.
enum class SaveStage {
  kNothingYet,
  kOldMetadataRemoved,       ///< the old model, without its metadata.json
  kNewModelWithoutMetadata,  ///< the new model, its metadata.json not yet written
  kNewModelNamed,            ///< the new model, complete
};

/// Whether DIR/metadata.json may stay beside a model.json whose own would
/// be `wanted` (null: none): it says the same but for its timeStamp.
bool metadata_agrees(const fs::path& path, const ordered_json& wanted) {
  if (wanted.is_null()) {
    return false;
  }
  ordered_json old;
  try {
    old = read_json_file(path.string());
  } catch (const Error&) {
    return false;  // unreadable or malformed: replaced
  }
  if (!old.is_object()) {
    return false;
  }
  ordered_json now = wanted;
  old.erase("timeStamp");
  now.erase("timeStamp");
  return old == now;
}

SavedFiles save_tfjs_steps(const Model& model,
                           const std::string& dir,
                           const SaveFormat& format,
                           SaveStage& stage) {
  const fs::path folder(dir);
  const std::vector<StoredWeight> stored = stored_weights(model, format.storage);
  const std::vector<char> weights = concatenated(stored);
  const std::vector<std::string> files = weight_file_names(weights.size(), format.shard_bytes);
  std::vector<std::vector<char>> parts;
  for (size_t k = 0; k < files.size(); ++k) {
    const size_t begin = format.shard_bytes == 0 ? 0 : k * format.shard_bytes;
    const size_t end = k + 1 == files.size() ? weights.size() : begin + format.shard_bytes;
    parts.emplace_back(weights.begin() + static_cast<std::ptrdiff_t>(begin),
                       weights.begin() + static_cast<std::ptrdiff_t>(end));
  }
  const ordered_json doc = model_json_with(model, stored, files);
  const ordered_json metadata = teachable_machine_metadata(model, iso_time_stamp());
  const fs::path metadata_path = folder / kTmMetadataFile;
  const SavedFiles saved{files, weights.size()};
  const auto unlink_all = [&folder](const std::vector<std::string>& names) {
    for (const std::string& name : names) {
      ::unlink((folder / name).c_str());
    }
  };
  std::error_code ec;
  if (!fs::exists(folder / kModelJsonFile, ec)) {
    // No model here yet: until model.json is in place there is none, so
    // its metadata.json goes first (and one left by another model goes).
    try {
      for (size_t k = 0; k < files.size(); ++k) {
        write_file_atomic((folder / files[k]).string(), parts[k]);
      }
      if (metadata.is_null()) {
        ::unlink(metadata_path.c_str());
      } else {
        write_file_atomic(metadata_path.string(), metadata.dump());
      }
      write_file_atomic((folder / kModelJsonFile).string(), doc.dump());
    } catch (const IoError&) {
      unlink_all(files);  // nothing names them
      if (!metadata.is_null()) {
        ::unlink(metadata_path.c_str());
      }
      throw;
    }
    stage = SaveStage::kNewModelNamed;
    remove_save_leftovers(dir);
    remove_unnamed_weight_files(dir, files);
    return saved;
  }
  // Replacing a model: model.json and its weight files are several files, and
  // renaming one after the other would leave, after a kill between two, a
  // model.json with the other model's weights. So the new weights first go
  // under fresh names that only the new model.json names; once that
  // model.json is in place, the weight files are replaced and model.json
  // rewritten to name them. Each step is an atomic rename: a kill at any
  // moment leaves the old model or the new one (possibly still naming the
  // staged files), plus files that nothing names, removed by the next save.
  std::vector<std::string> staged;
  for (int n = 0; staged.empty() || fs::exists(folder / staged.front(), ec); ++n) {
    staged.clear();
    const std::string stem = kStagedPrefix + std::to_string(::getpid()) + "-" + std::to_string(n);
    for (size_t k = 0; k < files.size(); ++k) {
      staged.push_back(stem + (files.size() == 1 ? "" : "-" + std::to_string(k + 1)) +
                       kStagedSuffix);
    }
  }
  ordered_json staged_doc = doc;
  staged_doc["weightsManifest"][0]["paths"] = staged;
  try {
    for (size_t k = 0; k < files.size(); ++k) {
      write_file_atomic((folder / staged[k]).string(), parts[k]);
    }
    // metadata.json and model.json cannot be renamed as one: the old
    // metadata.json goes before the new model.json comes, unless it names
    // the same classes, so that it never names another model's.
    if (fs::exists(metadata_path, ec) && !metadata_agrees(metadata_path, metadata)) {
      if (::unlink(metadata_path.c_str()) == 0) {
        stage = SaveStage::kOldMetadataRemoved;
      }
    }
    write_file_atomic((folder / kModelJsonFile).string(), staged_doc.dump());
  } catch (const IoError&) {
    unlink_all(staged);  // the old model.json does not name them
    throw;
  }
  stage = SaveStage::kNewModelNamed;
  if (!metadata.is_null()) {
    stage = SaveStage::kNewModelWithoutMetadata;
    write_file_atomic(metadata_path.string(), metadata.dump());
    stage = SaveStage::kNewModelNamed;
  }
  for (size_t k = 0; k < files.size(); ++k) {
    replace_with_link((folder / staged[k]).string(), (folder / files[k]).string(), parts[k]);
  }
  write_file_atomic((folder / kModelJsonFile).string(), doc.dump());
  unlink_all(staged);
  remove_save_leftovers(dir);
  remove_unnamed_weight_files(dir, files);
  return saved;
}

}  // namespace

void write_tfjs_files(const Model& model, const std::string& dir) {
  ensure_writable_dir(dir, "model folder");
  SaveStage stage = SaveStage::kNothingYet;
  save_tfjs_steps(model, dir, SaveFormat{}, stage);
}

SavedFiles save_tfjs(const Model& model, const std::string& dir, const SaveFormat& format) {
  if (const auto problem = save_format_problem(model, format)) {
    throw ConfigError(*problem);
  }
  ensure_writable_dir(dir, "model folder");
  std::error_code ec;
  const bool had_model = fs::exists(fs::path(dir) / kModelJsonFile, ec);
  SaveStage stage = SaveStage::kNothingYet;
  try {
    return save_tfjs_steps(model, dir, format, stage);
  } catch (const IoError& e) {
    // A full disk, a file-size limit, an I/O error: say what the folder holds.
    const std::string holds =
        stage == SaveStage::kNewModelNamed ? dir + " holds the new model, complete"
        : stage == SaveStage::kNewModelWithoutMetadata
            ? dir + " holds the new model, complete but for its " + kTmMetadataFile
        : stage == SaveStage::kOldMetadataRemoved
            ? "the model in " + dir + " is unchanged but for its " + kTmMetadataFile + ", removed"
        : had_model ? "the model in " + dir + " is unchanged"
                    : "nothing was saved in " + dir;
    throw IoError(std::string(e.what()) + "; " + holds);
  }
}

}  // namespace mnist
