// MNIST as resident tensors: loading the four IDX files, limits, and the
// TF.js-style validation split.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace mnist {

constexpr const char* kTrainImagesFile = "train-images-idx3-ubyte";
constexpr const char* kTrainLabelsFile = "train-labels-idx1-ubyte";
constexpr const char* kTestImagesFile = "t10k-images-idx3-ubyte";
constexpr const char* kTestLabelsFile = "t10k-labels-idx1-ubyte";

/// Images and their labels, row i of one belonging to row i of the other.
struct Dataset {
  at::Tensor images;  ///< [N,1,28,28] float32 in [0,1]
  at::Tensor labels;  ///< [N] int64 in 0..9
  int64_t size() const;
};

struct MnistData {
  Dataset train;  ///< from train-*: 60,000 records in the full set
  Dataset test;   ///< from t10k-*: 10,000 records in the full set
};

/// The data folder used when none is given: $MNIST_DATA_DIR if set, else
/// data/mnist in the source tree this binary was built from.
std::string default_data_dir();

/// `dir/name`, or `dir/name.gz` when only the compressed file exists.
std::string idx_path(const std::string& dir, const std::string& name);

/// Loads one images/labels pair; throws DataError if either file is bad or
/// their record counts differ. Each file may also be present as <name>.gz.
/// `limit` > 0 keeps only the first `limit` records.
Dataset load_pair(const std::string& dir,
                  const std::string& images_file,
                  const std::string& labels_file,
                  int64_t limit);

/// Loads train and test sets from `dir` (see load_pair).
MnistData load_mnist(const std::string& dir, int64_t train_limit, int64_t test_limit);

/// Splits like TF.js's fit({validationSplit}): the first
/// floor(N * (1 - fraction)) records train, the LAST ones validate (taken
/// before any shuffling).
struct Split {
  Dataset train;
  Dataset validation;
};
Split split_validation(const Dataset& data, double fraction);

}  // namespace mnist
