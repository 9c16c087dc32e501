// The serve allow-list: URL paths -> files, request-path checks (traversal,
// encodings, symlinks out of their folder), content types, the test sample
// (MNIST's IDX files, or a folder of images at the model's size and colours).
#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "mnist/data.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/history.hpp"
#include "mnist/idx.hpp"
#include "mnist/image_folder.hpp"
#include "mnist/model.hpp"
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

namespace {

/// The folder of images history.json's "data" record names, or why there is none.
std::string history_folder(const std::string& model_dir) {
  const std::string path = (fs::path(model_dir) / kHistoryFile).string();
  nlohmann::ordered_json history;
  try {
    history = read_json_file(path);
  } catch (const Error& e) {
    throw DataError(std::string(e.what()) +
                    "; the model does not take MNIST's digits: give serve the folder of "
                    "images to show it");
  }
  const auto data = history.is_object() ? history.find("data") : history.end();
  if (data == history.end() || !data->is_object() || !data->contains("folder") ||
      !(*data)["folder"].is_string()) {
    throw DataError(path +
                    ": names no folder of images (the model was not trained on one here); "
                    "give serve the folder of images to show it");
  }
  const std::string folder = (*data)["folder"].get<std::string>();
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw DataError(folder + ": the folder of images the model was trained on (as " + path +
                    " names it) is gone; give serve another folder of its classes");
  }
  return folder;
}

/// The test files history.json says its training held out of `folder`
/// (data.files.test, when data.folder is that folder); none else.
std::vector<std::string> held_out_files(const std::string& model_dir, const std::string& folder) {
  try {
    const auto history = read_json_file((fs::path(model_dir) / kHistoryFile).string());
    const auto& data = history.at("data");
    std::error_code ec;
    if (!fs::equivalent(data.at("folder").get<std::string>(), folder, ec) || ec) {
      return {};
    }
    return data.at("files").at("test").get<std::vector<std::string>>();
  } catch (const std::exception&) {
    return {};  // no history.json, or no folder's record in it: the folder's own test files
  }
}

}  // namespace

ServeSample load_model_sample(const std::string& model_dir,
                              const std::string& data_dir,
                              int64_t count,
                              const std::string& cache_dir) {
  // The model says what it takes; one that cannot be loaded is served for
  // the page to say why, with MNIST's digits as before.
  std::optional<Model> model;
  nlohmann::ordered_json metadata;
  try {
    model = load_tfjs(model_dir);
    metadata = (*model)->spec().metadata;
  } catch (const Error&) {
    model.reset();  // the page fetches model.json and says why it cannot load it
  }
  const std::optional<ImageSpec> spec =
      model ? model_image_spec(*model, model_dir) : std::optional<ImageSpec>();
  ServeSample sample;
  if (!spec) {
    sample.data_dir = data_dir.empty() ? default_data_dir(dataset_of(metadata)) : data_dir;
    if (is_image_folder(sample.data_dir)) {
      throw ConfigError(model_dir + ": the model takes MNIST's 28x28 digits; " + sample.data_dir +
                        " is a folder of images (give the folder of MNIST's IDX files)");
    }
    const MnistSample mnist = load_sample(sample.data_dir, count);
    sample.images.assign(mnist.images.begin(), mnist.images.end());
    sample.labels.assign(mnist.labels.begin(), mnist.labels.end());
    return sample;
  }
  sample.data_dir = data_dir.empty() ? history_folder(model_dir) : data_dir;
  sample.source = "folder";
  sample.height = spec->height;
  sample.width = spec->width;
  sample.channels = spec->color_mode == ColorMode::kRgb ? 3 : 1;
  if (!is_image_folder(sample.data_dir)) {
    throw ConfigError(sample.data_dir + ": not a folder of class folders of images; the model (" +
                      model_dir + ") takes " + std::to_string(spec->height) + "x" +
                      std::to_string(spec->width) + " " + color_mode_name(spec->color_mode) +
                      " images of its own classes");
  }
  const int64_t bytes_each = sample.height * sample.width * sample.channels;
  const int64_t n = std::min(count, std::max<int64_t>(1, kMaxSampleBytes / bytes_each));
  const std::vector<std::string> names = class_names_of(metadata, model_outputs(*model));
  DecodeOptions options;
  options.cache_dir = cache_dir;
  std::vector<BadImage> bad;
  const Dataset test = folder_test_sample(sample.data_dir, names, *spec, n, options, bad,
                                          held_out_files(model_dir, sample.data_dir));
  if (test.size() == 0) {
    throw DataError(sample.data_dir + ": none of its test images can be read" +
                    (bad.empty() ? std::string() : ":" + bad_images_text(bad)));
  }
  // uint8 [N,C,H,W] rows of the decoded images -> [N,H,W,C] bytes.
  const at::Tensor rows =
      test.rows.defined() ? test.images.index_select(0, test.rows) : test.images;
  const at::Tensor images = rows.permute({0, 2, 3, 1}).contiguous();
  sample.images.assign(reinterpret_cast<const char*>(images.data_ptr<uint8_t>()),
                       static_cast<size_t>(images.numel()));
  const at::Tensor labels = test.labels.to(at::kLong).contiguous();
  sample.labels.assign(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + labels.numel());
  return sample;
}

}  // namespace mnist
