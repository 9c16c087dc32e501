// Keras 3's dialect of the TF.js Layers format (what tensorflowjs_converter
// writes for a Keras 3 model) rewritten as TF.js writes it, and the input
// shapes layers declare, bounded.
#include <cstdint>
#include <string>
#include <utility>

#include "mnist/error.hpp"
#include "tfjs_io/topology.hpp"

using nlohmann::ordered_json;

namespace mnist::tfjs {

namespace {

/// The largest input one example may have: 16,777,216 values (4096 x 4096
/// pixels of one channel), each side at most 65,536, refused before any
/// tensor is made.
constexpr int64_t kMaxInputValues = int64_t{1} << 24;
constexpr int64_t kMaxInputSide = int64_t{1} << 16;

/// Keras 3's serialized objects (initializers, regularizers, constraints)
/// carry "module" and "registered_name" next to "class_name" and "config":
/// metadata TF.js does not write, dropped here at any depth.
ordered_json without_keras3_metadata(const ordered_json& value) {
  if (value.is_array()) {
    ordered_json out = ordered_json::array();
    for (const auto& v : value) {
      out.push_back(without_keras3_metadata(v));
    }
    return out;
  }
  if (!value.is_object()) {
    return value;
  }
  const bool serialized = value.contains("class_name");
  ordered_json out = ordered_json::object();
  for (const auto& [key, v] : value.items()) {
    if (!(serialized && (key == "module" || key == "registered_name"))) {
      out[key] = without_keras3_metadata(v);
    }
  }
  return out;
}

}  // namespace

/// The input shape a layer's config declares (without the batch axis), if
/// any: "batch_input_shape" (TF.js, Keras 2), "batch_shape" (Keras 3) or
/// "input_shape"; [h,w,c] or [n], each size a positive integer, the whole
/// bounded (kMaxInputValues).
std::optional<Shape> declared_input_shape(const ordered_json& c, const Where& w) {
  std::optional<Shape> shape;
  for (const char* key : {"batch_input_shape", "batch_shape", "input_shape"}) {
    const ordered_json* v = find(c, key);
    if (v == nullptr || shape) {
      continue;
    }
    const bool batch = std::string(key) != "input_shape";
    const std::string what = std::string("field \"") + key + "\" is " + v->dump();
    if (!v->is_array() || v->size() < (batch ? 2U : 1U)) {
      w.fail(what + " (expected " + (batch ? "[null,h,w,c] or [null,n]" : "[h,w,c] or [n]") + ")");
    }
    Shape dims;
    int64_t values = 1;
    for (size_t i = batch ? 1 : 0; i < v->size(); ++i) {
      const ordered_json& d = (*v)[i];
      if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > kMaxInputSide) {
        w.fail(what + " (each size must be a whole number from 1 to " +
               std::to_string(kMaxInputSide) + ")");
      }
      dims.push_back(d.get<int64_t>());
      values *= dims.back();
      if (values > kMaxInputValues) {
        w.fail(what + " (more than " + std::to_string(kMaxInputValues) +
               " values per example: too large to train here)");
      }
    }
    if (dims.size() != 1 && dims.size() != 3) {
      w.fail(what + " (supported: images [null,h,w,c] and flat inputs [null,n])");
    }
    shape = std::move(dims);
  }
  return shape;
}

/// A "dtype" as Keras 3 writes it: a DTypePolicy object, {"module": "keras",
/// "class_name": "DTypePolicy", "config": {"name": "float32"},
/// "registered_name": null}. Only a float32 policy is accepted (TF.js
/// computes in float32); mixed_float16, bfloat16 and quantized policies are
/// refused, naming the field.
void check_dtype_policy(const ordered_json& dtype, const Where& w) {
  const ordered_json* cls = find(dtype, "class_name");
  const ordered_json* config = find(dtype, "config");
  const ordered_json* name = config != nullptr ? find(*config, "name") : nullptr;
  const bool policy = cls != nullptr && (*cls == "DTypePolicy" || *cls == "FloatDTypePolicy");
  if (!policy || name == nullptr || *name != "float32") {
    w.fail("field \"dtype\" is " + dtype.dump() +
           " (only float32 loads: the string \"float32\" or Keras 3's DTypePolicy "
           "named \"float32\")");
  }
}

/// A layer's config in TF.js's keys: Keras 3's dialect (tensorflowjs_converter
/// on a Keras 3 model: a DTypePolicy "dtype", "batch_shape", "module",
/// "registered_name", "build_config") rewritten as TF.js 4.22 writes and
/// reads it. A config TF.js or mnist-train wrote comes out as it went in, key
/// order too (so such models save byte-identically again).
ordered_json tfjs_layer_config(const ordered_json& config, const Where& w) {
  ordered_json out = ordered_json::object();
  for (const auto& [key, v] : config.items()) {
    if (key == "module" || key == "registered_name" || key == "build_config") {
      continue;  // Keras 3's metadata, of no use to TF.js
    }
    if (key == "dtype" && v.is_object()) {
      check_dtype_policy(v, w);
      out[key] = "float32";
    } else if (key == "batch_shape" && !config.contains("batch_input_shape")) {
      out["batch_input_shape"] = v;
    } else {
      out[key] = without_keras3_metadata(v);
    }
  }
  return out;
}

}  // namespace mnist::tfjs
