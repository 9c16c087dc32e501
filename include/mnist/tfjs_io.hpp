// The TensorFlow.js Layers format: model.json (topology + weights manifest)
// and weight files, written so that tf.loadLayersModel() rebuilds our model,
// and read back (ours or TF.js's own) into a Model. Every layout conversion
// between libtorch and TF.js lives in tfjs_io.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mnist/model.hpp"

namespace mnist {

constexpr const char* kModelJsonFile = "model.json";
constexpr const char* kWeightsFile = "weights.bin";

/// The name and version written into model.json's "generatedBy".
std::string generated_by();

/// model.json's modelTopology, key for key as TF.js 4.22 writes it (docs:
/// tfjs-layers-format.md). Layers read from a model.json keep their config.
nlohmann::ordered_json model_topology(const ModelSpec& spec);

/// The whole model.json document: modelTopology, weightsManifest, format,
/// generatedBy, convertedBy (null). Shapes come from `model`'s tensors.
nlohmann::ordered_json model_json(const Model& model);

/// weights.bin: every weight in manifest order, in TF.js layout (conv
/// kernels HWIO, dense kernels [in,out]), little-endian float32, no padding.
/// 594,922 * 4 = 2,379,688 bytes for the mnist-node convnet.
std::vector<char> weights_bin(const Model& model);

/// The ModelSpec described by a modelTopology (Sequential models of the
/// layers in model.hpp, input [null,28,28,1], channels_last). `origin`
/// names the file in errors. Throws FormatError naming the layer and field.
ModelSpec parse_topology(const nlohmann::ordered_json& topology, const std::string& origin);

/// Loads a Layers model saved by mnist-train or by TF.js: DIR/model.json (or
/// the given .json file) and every weight file its manifest names (several
/// paths and groups allowed, as TF.js shards them). Weights are checked
/// (names, shapes, byte counts, dtype float32, finite values) and converted
/// to libtorch layout. Returns the model on the CPU, in training mode.
/// Throws FormatError or IoError naming the file and the entry.
Model load_tfjs(const std::string& path);

/// Reads and parses a JSON file with bounds for untrusted input: at most
/// kMaxJsonBytes, nested at most kMaxJsonDepth deep (deeper nesting would
/// exhaust the stack), checked before parsing. Throws IoError if the file
/// cannot be read, FormatError naming the file otherwise.
constexpr uint64_t kMaxJsonBytes = uint64_t{64} << 20;
constexpr int kMaxJsonDepth = 64;
nlohmann::ordered_json read_json_file(const std::string& path);

/// Creates `dir` if missing and checks that a file can be created in it, so
/// that an unusable save path is reported before training, not after.
/// Throws IoError naming the folder and the reason.
void ensure_writable_dir(const std::string& dir);

/// Writes `bytes` to `path` through a temporary file in the same folder that
/// is flushed to disk and then renamed over `path`: readers see the old file
/// or the complete new one, never a torn one. Throws IoError.
/// fsyncs the folder `dir`, making a rename inside it durable.
void sync_dir(const std::string& dir);

/// Whether the decimal process id `pid_text` is this process's or no running
/// process's: a file or folder tagged with it (by a save or a checkpoint
/// killed half-way) is no longer in use.
bool process_gone(const std::string& pid_text);

void write_file_atomic(const std::string& path, const std::string& bytes);
void write_file_atomic(const std::string& path, const std::vector<char>& bytes);

/// Saves DIR/model.json and DIR/weights.bin so that a kill at any moment
/// leaves DIR holding the old model or the new one, never a mix: a new
/// folder gets weights.bin then model.json; a model being replaced first gets
/// its new weights under weights.new-<pid>-<n>.bin, named by the new
/// model.json, before weights.bin is replaced and model.json names it again.
/// A finished save leaves model.json + weights.bin; files that killed saves
/// left and nothing names are removed.
void save_tfjs(const Model& model, const std::string& dir);

}  // namespace mnist
