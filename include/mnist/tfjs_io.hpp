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
/// layers in model.hpp, input [null,28,28,1], channels_last). `origin`
/// names the file in errors. Throws FormatError naming the layer and field.
ModelSpec parse_topology(const nlohmann::ordered_json& topology, const std::string& origin);

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

/// weights.bin: every weight in manifest order, in TF.js layout (conv
/// kernels HWIO, dense kernels [in,out]), little-endian float32 (or stored
/// as `storage`), no padding. 594,922 * 4 = 2,379,688 bytes for the
/// mnist-node convnet in float32.
std::vector<char> weights_bin(const Model& model, WeightStorage storage = WeightStorage::kFloat32);

/// Saves DIR/model.json and DIR/weights.bin (DIR is created) so that a kill
/// at any moment leaves DIR holding the old model or the new one, never a
/// mix: a new folder gets weights.bin then model.json; a model being
/// replaced first gets its new weights under weights.new-<pid>-<n>.bin,
/// named by the new model.json, before weights.bin is replaced and
/// model.json names it again. A finished save leaves model.json +
/// weights.bin; files that killed saves left and nothing names are removed.
/// A failed write (a full disk, a file-size limit) removes the files it
/// staged and throws IoError naming the file, the cause and what DIR holds
/// (its old model, unchanged, or the new one).
void save_tfjs(const Model& model,
               const std::string& dir,
               WeightStorage storage = WeightStorage::kFloat32);

/// save_tfjs into a folder that the caller owns and discards whole on
/// failure (a checkpoint being written): its IoError does not describe DIR.
void write_tfjs_files(const Model& model, const std::string& dir);

}  // namespace mnist
