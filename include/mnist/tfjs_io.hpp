// The TensorFlow.js Layers format: model.json (topology + weights manifest)
// and weight files. Reading (src/tfjs_io/read.cpp) rebuilds a Model from what
// mnist-train or TF.js saved; writing (src/tfjs_io/write.cpp) produces files
// that tf.loadLayersModel() rebuilds our model from, replaced crash-safely.
// Every layout conversion between libtorch and TF.js, both ways, is in
// src/tfjs_io/layout.cpp. The format itself: docs/design.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mnist/model.hpp"

namespace mnist {

constexpr const char* kModelJsonFile = "model.json";
constexpr const char* kWeightsFile = "weights.bin";
/// Teachable Machine's file of class names beside model.json.
constexpr const char* kTmMetadataFile = "metadata.json";

/// The name and version written into model.json's "generatedBy".
std::string generated_by();

// ---- The rule for weight paths (loading and serving) -----------------------

/// A weight file named in a weightsManifest group's "paths", checked.
struct WeightPath {
  std::string path;     ///< relative to the model folder, "./" dropped; "" if refused
  std::string problem;  ///< why it is refused ("is absolute", ...); "" if accepted
};

/// The one rule for manifest paths, used by load_tfjs and by serve: a plain
/// relative path inside the model folder (fs_util's is_plain_relative_path),
/// after leading "./" segments are dropped (TF.js's browser saver writes
/// "./NAME.weights.bin"). Absolute paths, "..", empty segments, backslashes
/// and control characters are refused.
WeightPath check_weight_path(const std::string& manifest_path);

// ---- How weight values are stored (a manifest entry's "quantization") ------

/// float32 as is, or quantized as tensorflowjs_converter writes it and
/// tfjs-core's decodeWeights reads it: affine uint8 / uint16 (one min and
/// scale per tensor) or IEEE half precision.
enum class WeightStorage { kFloat32, kUint8, kUint16, kFloat16 };

struct WeightEncoding {
  WeightStorage storage = WeightStorage::kFloat32;
  double min = 0.0;    ///< uint8/uint16: the value of q = 0
  double scale = 1.0;  ///< uint8/uint16: the step between two values of q
};

/// 4, 1, 2 or 2.
size_t bytes_per_value(WeightStorage storage);

/// `count` stored values (little-endian) as float32, as decodeWeights
/// computes them: q * scale + min in double precision, rounded once to
/// float32, for uint8/uint16; the exact half -> float conversion for float16.
std::vector<float> decode_weight_values(const char* bytes,
                                        size_t count,
                                        const WeightEncoding& encoding);

/// IEEE 754 binary16 (its bits) -> float, exactly (subnormals, infinities, NaN).
float half_to_float(uint16_t bits);

/// "float32", "uint8", "uint16", "float16" (the names --quantize takes and a
/// manifest's "quantization" "dtype" holds) <-> WeightStorage.
const char* storage_name(WeightStorage storage);
std::optional<WeightStorage> parse_storage(const std::string& name);

/// One tensor's values stored as `storage`, as tensorflowjs_converter's
/// quantize_weights does (tfjs-converter/python/tensorflowjs/quantization.py):
/// uint8/uint16 affine over [min, max], the range nudged so that 0 is a
/// value exactly when 0 lies in it, q = round half to even of (clip(w) -
/// min) / scale (a constant tensor: all q = 0, scale 1); float16 by rounding
/// to nearest even. Bytes little-endian.
struct StoredWeight {
  std::vector<char> bytes;
  WeightEncoding encoding;
};
StoredWeight store_weight_values(const std::vector<float>& values, WeightStorage storage);

// ---- Reading ---------------------------------------------------------------

/// The ModelSpec described by a modelTopology (Sequential models of the
/// registry's layers, layers.hpp; input [null,28,28,1], channels_last), with
/// the model's weights manifest (a SeparableConv2D that TF.js saved without
/// its depth_multiplier has it there). `origin` names the file in errors.
/// Throws FormatError naming the layer and field.
ModelSpec parse_topology(const nlohmann::ordered_json& topology,
                         const std::string& origin,
                         const nlohmann::ordered_json& manifest = nlohmann::ordered_json::array());

/// Loads a Layers model saved by mnist-train or by TF.js: DIR/model.json (or
/// the given .json file) and every weight file its manifest names (several
/// paths and groups allowed, as TF.js shards them; a tensor may straddle two
/// files). Weights are checked (names, shapes, byte counts, dtype float32,
/// stored as float32 or quantized uint8/uint16/float16, finite values),
/// dequantized as TF.js does and converted to libtorch layout. Returns the model on the CPU, in
/// training mode. Throws FormatError or IoError naming the file and the entry.
Model load_tfjs(const std::string& path);

/// The weight files DIR/model.json's manifest names that check_weight_path
/// accepts, normalised, in manifest order; refused or malformed entries are
/// left out (serve then answers them with 404). Reads model.json with
/// read_json_file's bounds; throws IoError or FormatError if it cannot.
std::vector<std::string> manifest_weight_files(const std::string& model_dir);

// ---- Writing ---------------------------------------------------------------

/// model.json's modelTopology, key for key as TF.js 4.22 writes it
/// (docs/design.md). Layers read from a model.json keep their config.
nlohmann::ordered_json model_topology(const ModelSpec& spec);

/// The whole model.json document: modelTopology, weightsManifest, format,
/// generatedBy, convertedBy (null). Shapes come from `model`'s tensors;
/// with a storage other than float32, each manifest entry (still "dtype":
/// "float32", as the converter writes it) gets its "quantization".
nlohmann::ordered_json model_json(const Model& model,
                                  WeightStorage storage = WeightStorage::kFloat32);

/// metadata.json in the form Teachable Machine's image library
/// (@teachablemachine/image) reads beside model.json, so that web code
/// written for its models can use ours (docs/design.md, "Class names beside
/// the model"): "labels" (the class of each output), "imageSize" (the side
/// of a square [s,s,c] input; left out for another shape), "grayscale"
/// (one channel), and what describes the model: "tfjsVersion" (the TF.js
/// version the files are written for), "packageName" "mnist-train",
/// "packageVersion", "modelName" (the topology's name), "timeStamp"
/// (`time_stamp`), "userMetadata" ({"imageSize": [h, w], "colorMode":
/// "grayscale"|"rgb", "inputRange": [0, 1]} for an image input). No
/// "tmVersion": Teachable Machine did not make it. Null when the model's
/// userDefinedMetadata names no class per output ("classNames"): a plain
/// MNIST model, as mnist-node's, has none.
nlohmann::ordered_json teachable_machine_metadata(const Model& model,
                                                  const std::string& time_stamp);

/// The time now as JavaScript's Date.toISOString writes it (Teachable
/// Machine's timeStamp): "2026-12-05T05:30:00.123Z".
std::string iso_time_stamp();

/// weights.bin: every weight in manifest order, in TF.js layout (conv
/// kernels HWIO, dense kernels [in,out]), little-endian float32 (or stored
/// as `storage`), no padding. 594,922 * 4 = 2,379,688 bytes for the
/// mnist-node convnet in float32.
std::vector<char> weights_bin(const Model& model, WeightStorage storage = WeightStorage::kFloat32);

/// How save_tfjs stores the weights: their values (float32 or quantized) and
/// the files they go in.
struct SaveFormat {
  WeightStorage storage = WeightStorage::kFloat32;
  /// 0: one file, weights.bin (as tfjs-node's model.save writes); N: the
  /// weight bytes, in manifest order, cut every N bytes into
  /// group1-shard1ofK.bin ... group1-shardKofK.bin, as tensorflowjs_converter
  /// --weight_shard_size_bytes does (a tensor may straddle two files).
  uint64_t shard_bytes = 0;
};

/// The most weight files a save writes (serve holds every file of a model
/// version open; a browser fetches each one).
constexpr size_t kMaxWeightFiles = 256;

/// The bytes the weights of `model` take when stored as `storage`.
uint64_t stored_weight_bytes(const Model& model, WeightStorage storage);

/// The file names weights of `total` bytes are saved under: {"weights.bin"}
/// when shard_bytes is 0, else group1-shardKofN.bin for K = 1..N, N =
/// ceil(total / shard_bytes) (at least 1: an empty model gets one empty file).
std::vector<std::string> weight_file_names(uint64_t total, uint64_t shard_bytes);

/// Why `model` cannot be saved in `format` ("--weight-shard-size 10 would cut
/// the 2379688 bytes of weights into 237969 files; ..."), or nullopt. The CLI
/// asks before training, so that the save at the end cannot fail on it.
std::optional<std::string> save_format_problem(const Model& model, const SaveFormat& format);

/// What a save wrote.
struct SavedFiles {
  std::vector<std::string> weight_files;  ///< in manifest order
  uint64_t weight_bytes = 0;              ///< their total size
};

/// Saves DIR/model.json and its weight files (DIR is created) so that a kill
/// at any moment leaves DIR holding the old model or the new one, never a
/// mix: a new folder gets its weight files then model.json; a model being
/// replaced first gets its new weights under weights.new-<pid>-<n>[-<k>].bin,
/// named by the new model.json, before the weight files are replaced one by
/// one and model.json names them again. A model whose metadata names its
/// classes also gets DIR/metadata.json (teachable_machine_metadata); any
/// other save removes one left there. A metadata.json never names other
/// labels than the model.json beside it: one that would is removed before
/// the new model.json is put in place, and the new one is written after it
/// (a new folder: before model.json), so a kill in between leaves the new
/// model without it (the next save writes it). A finished save leaves model.json +
/// the files `format` names; files that killed saves left and nothing names
/// are removed, and so are weight files of the old model (weights.bin,
/// groupG-shardKofN.bin) that the new model.json does not name. A failed
/// write (a full disk, a file-size limit) removes the files it staged and
/// throws IoError naming the file, the cause and what DIR holds (its old
/// model, unchanged, or the new one). A `format` that save_format_problem
/// refuses throws ConfigError before anything is written.
SavedFiles save_tfjs(const Model& model, const std::string& dir, const SaveFormat& format = {});

/// save_tfjs into a folder that the caller owns and discards whole on
/// failure (a checkpoint being written): its IoError does not describe DIR.
void write_tfjs_files(const Model& model, const std::string& dir);

}  // namespace mnist
