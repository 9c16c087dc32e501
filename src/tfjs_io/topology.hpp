// The topology reader's parts (private to src/tfjs_io/): Keras 3's dialect
// and input shapes (dialect.cpp), one layer entry (topology.cpp), a
// functional model's graph (graph.cpp).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "mnist/model.hpp"
#include "tfjs_io/reading.hpp"

namespace mnist::tfjs {

/// The input shape a layer's config declares (without the batch axis), if
/// any: "batch_input_shape" (TF.js, Keras 2), "batch_shape" (Keras 3) or
/// "input_shape"; [h,w,c] or [n], each size a whole number from 1 to 65536,
/// at most 16,777,216 values per example (refused before any tensor is made).
std::optional<Shape> declared_input_shape(const nlohmann::ordered_json& c, const Where& w);

/// Refuses a Keras 3 DTypePolicy "dtype" other than float32, naming the field.
void check_dtype_policy(const nlohmann::ordered_json& dtype, const Where& w);

/// A layer's config in TF.js's keys: Keras 3's dialect (tensorflowjs_converter
/// on a Keras 3 model: a DTypePolicy "dtype", "batch_shape", "module",
/// "registered_name", "build_config") rewritten as TF.js 4.22 writes and
/// reads it. A config TF.js or mnist-train wrote comes out as it went in, key
/// order too (so such models save byte-identically again).
nlohmann::ordered_json tfjs_layer_config(const nlohmann::ordered_json& config, const Where& w);

/// The layer of one entry {"class_name", "config"} of a model's "layers"
/// (entry `index`, errors naming `file`): made by the registry, or a nested
/// Sequential; the config kept as read for saving. Sets `input_shape` from
/// the entry's declared shape when `index` is 0.
LayerPtr parse_layer(const nlohmann::ordered_json& entry,
                     size_t index,
                     const std::string& file,
                     const nlohmann::ordered_json& manifest,
                     const std::string& model_name,
                     std::optional<Shape>& input_shape);

/// A functional model's config ("layers" with their "inbound_nodes",
/// "input_layers", "output_layers") -> its ModelSpec with its Graph.
/// `counts_own_calls`: the file numbers a nested Sequential's calls as TF.js
/// does (from its call on its own input), not as Keras does.
ModelSpec parse_functional(const nlohmann::ordered_json& config,
                           const std::string& origin,
                           const nlohmann::ordered_json& manifest,
                           bool counts_own_calls);

}  // namespace mnist::tfjs
