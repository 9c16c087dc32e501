// MNIST loading: resolves file names (raw or .gz), pairs images with labels,
// applies limits and the TF.js validation split.
#include "mnist/data.hpp"

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
  return {data.images.narrow(0, 0, limit), data.labels.narrow(0, 0, limit)};
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

std::string default_data_dir() {
  if (const char* env = std::getenv("MNIST_DATA_DIR")) {
    if (*env != '\0') {
      return env;
    }
  }
  return (fs::path(MNIST_SOURCE_DIR) / "data" / "mnist").string();
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
  return {{data.images.narrow(0, 0, split_at), data.labels.narrow(0, 0, split_at)},
          {data.images.narrow(0, split_at, n - split_at),
           data.labels.narrow(0, split_at, n - split_at)}};
}

}  // namespace mnist
