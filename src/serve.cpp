// The serve allow-list: URL paths -> files, request-path checks (traversal,
// encodings, symlinks out of their folder), content types, the bounds on a
// request head, the MNIST sample.
#include "mnist/serve.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "mnist/data.hpp"
#include "mnist/error.hpp"
#include "mnist/idx.hpp"

#ifndef MNIST_SOURCE_DIR
#define MNIST_SOURCE_DIR "."
#endif

namespace fs = std::filesystem;

namespace mnist {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Splits on '/'; "a//b" gives an empty segment.
std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    out.push_back(path.substr(start, slash - start));
    if (slash == std::string::npos) {
      return out;
    }
    start = slash + 1;
  }
}

bool plain_segment(const std::string& s) {
  if (s.empty() || s == "." || s == "..") {
    return false;
  }
  return std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == '\\' || u < 0x20 || u == 0x7f;
  });
}

/// `file`'s real path lies strictly inside `root`'s real path.
bool inside(const std::string& file, const std::string& root) {
  std::error_code ec;
  const fs::path real_root = fs::canonical(root, ec);
  if (ec) {
    return false;
  }
  const fs::path real_file = fs::canonical(file, ec);
  if (ec || !fs::is_regular_file(real_file, ec)) {
    return false;
  }
  const auto rel = real_file.lexically_relative(real_root);
  return !rel.empty() && *rel.begin() != ".." && rel.is_relative();
}


}  // namespace

std::string default_web_dir() {
  if (const char* env = std::getenv("MNIST_WEB_DIR")) {
    if (*env != '\0') {
      return env;
    }
  }
  return (fs::path(MNIST_SOURCE_DIR) / "web").string();
}

std::string content_type_for(const std::string& path) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".bin", "application/octet-stream"},
      {".png", "image/png"},
      {".svg", "image/svg+xml"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
  };
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto it = kTypes.find(ext);
  return it != kTypes.end() ? it->second : "application/octet-stream";
}

std::optional<std::string> percent_decode(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\0') {
      return std::nullopt;  // a raw NUL would cut the path short in C APIs
    }
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) {
      return std::nullopt;
    }
    const int hi = hex_value(text[i + 1]);
    const int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

bool is_plain_relative_path(const std::string& path) {
  if (path.empty() || path.front() == '/') {
    return false;
  }
  const auto parts = segments(path);
  return std::all_of(parts.begin(), parts.end(), plain_segment);
}

void add_served_file(ServeTable& table,
                     const std::string& url,
                     const std::string& root,
                     const std::string& relative) {
  table[url] = ServedFile{(fs::path(root) / relative).string(), root,
                          content_type_for(relative)};
}

void add_web_files(ServeTable& table, const std::string& web_dir) {
  add_served_file(table, "/", web_dir, "index.html");
  for (const char* name : {"index.html", "app.js", "style.css"}) {
    add_served_file(table, std::string("/") + name, web_dir, name);
  }
  add_served_file(table, "/vendor/tf.min.js", web_dir,
                  "node_modules/@tensorflow/tfjs/dist/tf.min.js");
  add_served_file(table, "/vendor/tfjs-vis.umd.min.js", web_dir,
                  "node_modules/@tensorflow/tfjs-vis/dist/tfjs-vis.umd.min.js");
}

void add_model_files(ServeTable& table, const std::string& model_dir) {
  add_served_file(table, "/models/model.json", model_dir, "model.json");
  add_served_file(table, "/models/history.json", model_dir, "history.json");
  std::ifstream file(fs::path(model_dir) / "model.json");
  if (!file) {
    return;
  }
  const auto json = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("weightsManifest") ||
      !json["weightsManifest"].is_array()) {
    return;
  }
  for (const auto& group : json["weightsManifest"]) {
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array()) {
      continue;
    }
    for (const auto& p : group["paths"]) {
      if (p.is_string() && is_plain_relative_path(p.get<std::string>())) {
        add_served_file(table, "/models/" + p.get<std::string>(), model_dir,
                        p.get<std::string>());
      }
    }
  }
}

std::optional<ServedFile> resolve_request_path(const std::string& target,
                                               const ServeTable& table) {
  const std::string raw = target.substr(0, target.find_first_of("?#"));
  const auto path = percent_decode(raw);
  if (!path || path->empty() || path->front() != '/') {
    return std::nullopt;
  }
  if (*path != "/" && !is_plain_relative_path(path->substr(1))) {
    return std::nullopt;
  }
  const auto it = table.find(*path);
  if (it == table.end() || !inside(it->second.path, it->second.root)) {
    return std::nullopt;
  }
  return it->second;
}

int request_refusal(const RequestHead& head) {
  if (head.header_count > kMaxRequestHeaders) {
    return 431;
  }
  const bool bodiless =
      head.method == "GET" || head.method == "HEAD" || head.method == "OPTIONS";
  if (!head.transfer_encodings.empty()) {
    return head.content_lengths.empty() && !bodiless ? 0 : 400;
  }
  if (head.content_lengths.empty()) {
    return 0;
  }
  const std::string& first = head.content_lengths.front();
  const bool decimal =
      !first.empty() && first.size() <= 19 &&
      std::all_of(first.begin(), first.end(), [](char c) { return c >= '0' && c <= '9'; });
  const bool agree = std::all_of(head.content_lengths.begin(), head.content_lengths.end(),
                                 [&](const std::string& v) { return v == first; });
  if (!decimal || !agree) {
    return 400;
  }
  const unsigned long long length = std::stoull(first);
  if (bodiless) {
    return length == 0 ? 0 : 400;
  }
  return length > kMaxRequestBodyBytes ? 413 : 0;
}

MnistSample load_sample(const std::string& data_dir, int64_t count) {
  const IdxFile images =
      read_idx(idx_path(data_dir, kTestImagesFile), kIdxImagesMagic);
  const IdxFile labels =
      read_idx(idx_path(data_dir, kTestLabelsFile), kIdxLabelsMagic);
  const int64_t n = std::max<int64_t>(
      0, std::min({count, images.dims.at(0), labels.dims.at(0)}));
  const auto pixels = static_cast<size_t>(n * kImageSide * kImageSide);
  MnistSample sample;
  sample.images.assign(images.data.begin(), images.data.begin() + pixels);
  sample.labels.assign(labels.data.begin(), labels.data.begin() + n);
  return sample;
}

}  // namespace mnist
