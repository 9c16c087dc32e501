// What reading the TF.js Layers format shares (private to src/tfjs_io/):
// errors that name the file and the entry, and the JSON lookup.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "mnist/error.hpp"

namespace mnist::tfjs {

/// Error context: the file and, once known, the layer or weight entry.
struct Where {
  std::string file;
  std::string entry;
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(file + (entry.empty() ? "" : ": " + entry) + ": " + what);
  }
};

inline const nlohmann::ordered_json* find(const nlohmann::ordered_json& object, const char* key) {
  if (!object.is_object()) {
    return nullptr;
  }
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

}  // namespace mnist::tfjs
