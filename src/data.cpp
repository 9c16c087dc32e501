// MNIST loading: resolves file names (raw or .gz), pairs images with labels,
// applies limits and the TF.js validation split.
#include "mnist/data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "mnist/idx.hpp"

namespace fs = std::filesystem;

namespace mnist {

namespace {

Dataset first(const Dataset& data, int64_t limit) {
  if (limit <= 0 || limit >= data.size()) {
    return data;
  }
  return data.narrow(0, limit);
}

at::Tensor as_float(at::Tensor x) {
  return x.scalar_type() == at::kByte ? x.to(at::kFloat).div_(255.0) : x;
}

}  // namespace

std::string idx_path(const std::string& dir, const std::string& name) {
  const fs::path raw = fs::path(dir) / name;
  std::error_code ec;
  if (!fs::exists(raw, ec)) {
    fs::path gz = raw;
    gz += ".gz";
    if (fs::exists(gz, ec)) {
      return gz.string();
    }
  }
  return raw.string();
}

int64_t Dataset::size() const { return labels.defined() ? labels.size(0) : 0; }

at::Tensor Dataset::gather(const at::Tensor& idx) const {
  return as_float(images.index_select(0, rows.defined() ? rows.index_select(0, idx) : idx));
}

at::Tensor Dataset::slice(int64_t start, int64_t len) const {
  return as_float(rows.defined() ? images.index_select(0, rows.narrow(0, start, len))
                                 : images.narrow(0, start, len));
}

std::vector<int64_t> Dataset::image_shape() const {
  return {images.size(1), images.size(2), images.size(3)};
}

Dataset Dataset::to(const c10::Device& device) const {
  return {images.to(device), labels.to(device), rows.defined() ? rows.to(device) : rows};
}

Dataset Dataset::narrow(int64_t start, int64_t len) const {
  return {rows.defined() ? images : images.narrow(0, start, len), labels.narrow(0, start, len),
          rows.defined() ? rows.narrow(0, start, len) : rows};
}

std::string default_data_dir() {
  if (const char* env = std::getenv("MNIST_DATA_DIR")) {
    if (*env != '\0') {
      return env;
    }
  }
  return (fs::path(MNIST_SOURCE_DIR) / "data" / "mnist").string();
}

const char* dataset_name(DatasetKind kind) {
  return kind == DatasetKind::kFashionMnist ? "fashion-mnist" : "mnist";
}

std::optional<DatasetKind> parse_dataset(const std::string& name) {
  if (name == "mnist") {
    return DatasetKind::kMnist;
  }
  if (name == "fashion-mnist") {
    return DatasetKind::kFashionMnist;
  }
  return std::nullopt;
}

const std::vector<std::string>& class_names(DatasetKind kind) {
  static const std::vector<std::string> digits = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  static const std::vector<std::string> fashion = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return kind == DatasetKind::kFashionMnist ? fashion : digits;
}

std::string default_data_dir(DatasetKind kind) {
  if (kind == DatasetKind::kMnist) {
    return default_data_dir();
  }
  if (const char* env = std::getenv("FASHION_MNIST_DIR")) {
    if (*env != '\0') {
      return env;
    }
  }
  return "/usr/share/datasets/fashion-mnist";
}

nlohmann::ordered_json dataset_metadata(DatasetKind kind) {
  if (kind == DatasetKind::kMnist) {
    return nullptr;
  }
  return {{"dataset", dataset_name(kind)}, {"classNames", class_names(kind)}};
}

DatasetKind dataset_of(const nlohmann::ordered_json& metadata) {
  if (metadata.is_object()) {
    if (const auto it = metadata.find("dataset"); it != metadata.end() && it->is_string()) {
      return parse_dataset(it->get<std::string>()).value_or(DatasetKind::kMnist);
    }
  }
  return DatasetKind::kMnist;
}

LabelSet all_labels() {
  LabelSet labels(kNumClasses);
  for (int64_t c = 0; c < kNumClasses; ++c) {
    labels[c] = c;
  }
  return labels;
}

LabelSet parse_labels(const std::string& text) {
  const auto bad = [&](const std::string& why) {
    return ConfigError("--labels " + text + ": " + why +
                       " (give labels 0-9 as a range, 0-4, or a list, 5,6,7,8,9)");
  };
  const auto label = [&](const std::string& part) -> int64_t {
    if (part.size() != 1 || part[0] < '0' || part[0] > '9') {
      throw bad("'" + part + "' is not a label");
    }
    return part[0] - '0';
  };
  LabelSet labels;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string part = text.substr(start, comma - start);
    if (const size_t dash = part.find('-'); dash != std::string::npos) {
      const int64_t from = label(part.substr(0, dash));
      const int64_t to = label(part.substr(dash + 1));
      if (to < from) {
        throw bad("the range " + part + " runs backwards");
      }
      for (int64_t c = from; c <= to; ++c) {
        labels.push_back(c);
      }
    } else {
      labels.push_back(label(part));
    }
    start = comma + 1;
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (std::find(labels.begin(), labels.begin() + static_cast<ptrdiff_t>(i), labels[i]) !=
        labels.begin() + static_cast<ptrdiff_t>(i)) {
      throw bad(std::to_string(labels[i]) + " is given twice");
    }
  }
  if (labels.size() < 2) {
    throw bad("a classifier needs at least two labels");
  }
  return labels;
}

std::string labels_text(const LabelSet& labels) {
  bool run = labels.size() > 2;
  for (size_t i = 1; i < labels.size(); ++i) {
    run = run && labels[i] == labels[i - 1] + 1;
  }
  if (run) {
    return std::to_string(labels.front()) + "-" + std::to_string(labels.back());
  }
  std::string out;
  for (const int64_t c : labels) {
    out += (out.empty() ? "" : ",") + std::to_string(c);
  }
  return out;
}

LabelSet labels_of(const nlohmann::ordered_json& metadata, int64_t outputs) {
  if (metadata.is_object()) {
    if (const auto it = metadata.find("labels");
        it != metadata.end() && it->is_array() && static_cast<int64_t>(it->size()) == outputs) {
      LabelSet labels;
      for (const auto& v : *it) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= kNumClasses ||
            std::find(labels.begin(), labels.end(), v.get<int64_t>()) != labels.end()) {
          break;
        }
        labels.push_back(v.get<int64_t>());
      }
      if (static_cast<int64_t>(labels.size()) == outputs) {
        return labels;
      }
    }
  }
  LabelSet labels = all_labels();
  labels.resize(static_cast<size_t>(std::clamp<int64_t>(outputs, 0, kNumClasses)));
  return labels;
}

nlohmann::ordered_json with_labels(nlohmann::ordered_json metadata,
                                   DatasetKind kind,
                                   const LabelSet& labels) {
  if (!metadata.is_object()) {
    metadata = nlohmann::ordered_json::object();
  }
  if (kind == DatasetKind::kMnist && labels == all_labels()) {
    for (const char* key : {"dataset", "classNames", "labels"}) {
      metadata.erase(key);
    }
    return metadata.empty() ? nlohmann::ordered_json() : metadata;
  }
  std::vector<std::string> names;
  for (const int64_t c : labels) {
    names.push_back(class_names(kind).at(static_cast<size_t>(c)));
  }
  metadata["dataset"] = dataset_name(kind);
  metadata["classNames"] = names;
  if (labels == all_labels()) {
    metadata.erase("labels");
  } else {
    metadata["labels"] = labels;
  }
  return metadata;
}

std::vector<std::string> class_names_of(const nlohmann::ordered_json& metadata, int64_t outputs) {
  if (metadata.is_object()) {
    if (const auto it = metadata.find("classNames");
        it != metadata.end() && it->is_array() && static_cast<int64_t>(it->size()) == outputs &&
        std::all_of(it->begin(), it->end(), [](const auto& v) { return v.is_string(); })) {
      return it->get<std::vector<std::string>>();
    }
  }
  std::vector<std::string> names;
  for (const int64_t c : labels_of(metadata, outputs)) {
    names.push_back(class_names(dataset_of(metadata)).at(static_cast<size_t>(c)));
  }
  return names;
}

Dataset select_labels(const Dataset& data, const LabelSet& labels) {
  if (labels == all_labels() || data.size() == 0) {
    return data;
  }
  // position[label] = its output, or -1 for a label outside the set.
  at::Tensor position = at::full({kNumClasses}, -1, at::kLong);
  for (size_t i = 0; i < labels.size(); ++i) {
    position[labels[i]] = static_cast<int64_t>(i);
  }
  const at::Tensor relabelled = position.index_select(0, data.labels.to(at::kLong));
  const at::Tensor keep = (relabelled >= 0).nonzero().squeeze(1);
  if (data.rows.defined()) {
    return {data.images, relabelled.index_select(0, keep), data.rows.index_select(0, keep)};
  }
  return {data.images.index_select(0, keep), relabelled.index_select(0, keep)};
}

Dataset load_pair(const std::string& dir,
                  const std::string& images_file,
                  const std::string& labels_file,
                  int64_t limit) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw DataError(dir +
                        ": data folder not found (expected the four MNIST "
                        "IDX files there); " +
                        kFetchHint,
                    Remedy::kDataFolder);
  }
  const std::string images_path = idx_path(dir, images_file);
  const std::string labels_path = idx_path(dir, labels_file);
  Dataset data{read_idx_images(images_path), read_idx_labels(labels_path)};
  if (data.images.size(0) != data.labels.size(0)) {
    throw DataError(labels_path + ": holds " + std::to_string(data.labels.size(0)) +
                        " labels, but " + images_path + " holds " +
                        std::to_string(data.images.size(0)) +
                        " images (expected as many labels as images); " + kFetchHint,
                    Remedy::kDataFolder);
  }
  return first(data, limit);
}

MnistData load_mnist(const std::string& dir, int64_t train_limit, int64_t test_limit) {
  return {load_pair(dir, kTrainImagesFile, kTrainLabelsFile, train_limit),
          load_pair(dir, kTestImagesFile, kTestLabelsFile, test_limit)};
}

Split split_validation(const Dataset& data, double fraction) {
  if (!(fraction >= 0.0 && fraction < 1.0)) {
    throw ConfigError("validation split " + std::to_string(fraction) +
                      " is out of range (expected 0 <= split < 1)");
  }
  const int64_t n = data.size();
  // tfjs-layers training.ts: splitAt = Math.floor(N * (1 - validationSplit)).
  const auto split_at = static_cast<int64_t>(std::floor(static_cast<double>(n) * (1.0 - fraction)));
  return {data.narrow(0, split_at), data.narrow(split_at, n - split_at)};
}

}  // namespace mnist
