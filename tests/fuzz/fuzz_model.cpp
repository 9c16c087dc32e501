// libFuzzer harness: load_tfjs (model.json parsing, topology checks, the
// weights manifest and the weight files) on arbitrary folders. The input is
// model.json, then the contents of the files its manifest names, in order,
// each part after a separator line (kSeparator); a missing part leaves that
// file absent. Anything but a loaded model or mnist::Error is a finding.
#include <sys/stat.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mnist/error.hpp"
#include "mnist/tfjs_io.hpp"
#include "test_util.hpp"

namespace {

constexpr std::string_view kSeparator = "\n#~mnist-fuzz-file~#\n";

/// The weight files model.json's manifest names, as the loader reads them, in order.
std::vector<std::string> manifest_paths(std::string_view json_text) {
  std::vector<std::string> paths;
  const auto doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("weightsManifest") || !doc["weightsManifest"].is_array()) {
    return paths;
  }
  for (const auto& group : doc["weightsManifest"]) {
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array()) {
      continue;
    }
    for (const auto& p : group["paths"]) {
      if (!p.is_string()) {
        continue;
      }
      // The loader's own rule ("./" dropped), in the folder itself only.
      const mnist::WeightPath checked = mnist::check_weight_path(p.get<std::string>());
      if (checked.problem.empty() && checked.path.find('/') == std::string::npos &&
          paths.size() < 16) {
        paths.push_back(checked.path);
      }
    }
  }
  return paths;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = mnist::test::process_temp_dir().path().string() + "/model";
  static const bool made = [] { return mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST; }();
  if (!made) {
    __builtin_trap();
  }
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t end = input.find(kSeparator, start);
    parts.push_back(input.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) {
      break;
    }
    start = end + kSeparator.size();
  }
  const auto write = [](const std::string& path, std::string_view bytes) {
    mnist::test::write_bytes(path, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  };
  write(dir + "/model.json", parts[0]);
  const std::vector<std::string> paths = manifest_paths(parts[0]);
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string file = dir + "/" + paths[i];
    if (i + 1 < parts.size()) {
      write(file, parts[i + 1]);
    } else {
      std::remove(file.c_str());
    }
  }
  try {
    const mnist::Model model = mnist::load_tfjs(dir);
    (void)model->parameters();
  } catch (const mnist::Error&) {
  }
  for (const auto& p : paths) {
    std::remove((dir + "/" + p).c_str());
  }
  return 0;
}
