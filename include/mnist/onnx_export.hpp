// A model exported to ONNX (docs/formats.md, "Export to ONNX"): the same
// function as TF.js's predict(), written with the ONNX protobuf classes
// (Debian's libonnx-dev) at opset 13, for ONNX Runtime and the tools that
// read ONNX. The input keeps TF.js's name and NHWC shape; inside, the
// convolutions and pooling work in NCHW (ONNX's only image layout), with one
// Transpose where the layout changes, so Flatten and Dense keep TF.js's
// NHWC order and their weights as they are.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mnist/model.hpp"

namespace mnist {

/// The ONNX operator set the export writes (ai.onnx, the default domain).
constexpr int64_t kOnnxOpset = 13;

/// What an exported model takes and gives, as its graph declares them.
struct OnnxSignature {
  /// TF.js's name of the model's input: "<first layer>_input" for a
  /// Sequential model (tfjs-layers' Sequential.add), the InputLayer's
  /// name for a functional one.
  std::string input_name;
  /// The input with its batch axis first (-1: "batch", any size), in TF.js's
  /// order: [-1,h,w,c] for images (NHWC), [-1,n] for a flat input.
  std::vector<int64_t> input_shape;
  /// The output's name (the model's output layer's) and shape, [-1,units]
  /// for a classifier: what TF.js's predict() returns, softmax applied.
  std::string output_name;
  std::vector<int64_t> output_shape;
};

/// The serialized ONNX ModelProto of `model` (float32 weights as
/// initializers in ONNX's layouts, opset kOnnxOpset, producer "mnist-train",
/// metadata_props naming the classes: docs/formats.md), checked by ONNX's
/// own checker before it is returned. `origin` names the model in errors (its
/// folder). Throws ConfigError "<origin>: layer '<name>' (<class>): ..." for
/// a layer ONNX cannot express, before any of the model is written.
std::string onnx_model_bytes(const Model& model, const std::string& origin);

/// The input and output the export of `model` declares (without exporting
/// it).
OnnxSignature onnx_signature(const Model& model);

/// Writes onnx_model_bytes(model, origin) to the file `path`, atomically (a
/// reader sees the old file or the whole new one). Throws ConfigError as
/// onnx_model_bytes does, IoError naming `path` when its folder is missing,
/// when it is a folder, or when it cannot be written. Returns the bytes
/// written.
uint64_t save_onnx(const Model& model, const std::string& origin, const std::string& path);

}  // namespace mnist
