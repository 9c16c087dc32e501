// The serve allow-list: URL paths -> files, request-path checks (traversal,
// encodings, symlinks out of their folder), content types, the MNIST sample.
#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "mnist/data.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/history.hpp"
#include "mnist/idx.hpp"
#include "mnist/serve.hpp"
#include "mnist/tfjs_io.hpp"

namespace fs = std::filesystem;

namespace mnist {

bool file_inside(const std::string& file, const std::string& root) {
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

std::string default_web_dir() {
  if (const char* env = std::getenv("MNIST_WEB_DIR")) {
    if (*env != '\0') {
      return env;
    }
  }
  // An installed binary (cmake --install, the .deb): PREFIX/bin/mnist-train
  // beside PREFIX/share/mnist-train/web.
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "mnist-train" / "web";
    if (fs::is_regular_file(installed / "index.html", ec)) {
      return installed.string();
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

void add_served_file(ServeTable& table,
                     const std::string& url,
                     const std::string& root,
                     const std::string& relative) {
  table[url] = ServedFile{(fs::path(root) / relative).string(), root, content_type_for(relative)};
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
  add_served_file(table, "/models/model.json", model_dir, kModelJsonFile);
  add_served_file(table, "/models/history.json", model_dir, kHistoryFile);
  // Teachable Machine's class names, for pages written for its models (a
  // 404 while the folder has none).
  add_served_file(table, std::string("/models/") + kTmMetadataFile, model_dir, kTmMetadataFile);
  std::vector<std::string> weights;
  try {
    weights = manifest_weight_files(model_dir);
  } catch (const Error&) {
    return;  // the page fetches model.json and reports why it cannot load it
  }
  for (const std::string& file : weights) {
    add_served_file(table, "/models/" + file, model_dir, file);
  }
}

std::optional<ServedFile> resolve_request_path(const std::string& target, const ServeTable& table) {
  const std::string raw = target.substr(0, target.find_first_of("?#"));
  const auto path = percent_decode(raw);
  if (!path || path->empty() || path->front() != '/') {
    return std::nullopt;
  }
  if (*path != "/" && !is_plain_relative_path(path->substr(1))) {
    return std::nullopt;
  }
  const auto it = table.find(*path);
  if (it == table.end() || !file_inside(it->second.path, it->second.root)) {
    return std::nullopt;
  }
  return it->second;
}

MnistSample load_sample(const std::string& data_dir, int64_t count) {
  const IdxFile images = read_idx(idx_path(data_dir, kTestImagesFile), kIdxImagesMagic);
  const IdxFile labels = read_idx(idx_path(data_dir, kTestLabelsFile), kIdxLabelsMagic);
  const int64_t n = std::max<int64_t>(0, std::min({count, images.dims.at(0), labels.dims.at(0)}));
  const auto pixels = static_cast<size_t>(n * kImageSide * kImageSide);
  MnistSample sample;
  sample.images.assign(images.data.begin(), images.data.begin() + pixels);
  sample.labels.assign(labels.data.begin(), labels.data.begin() + n);
  return sample;
}

}  // namespace mnist
