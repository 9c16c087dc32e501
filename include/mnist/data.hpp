// MNIST as resident tensors: loading the four IDX files, limits, and the
// TF.js-style validation split.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace mnist {

constexpr const char* kTrainImagesFile = "train-images-idx3-ubyte";
constexpr const char* kTrainLabelsFile = "train-labels-idx1-ubyte";
constexpr const char* kTestImagesFile = "t10k-images-idx3-ubyte";
constexpr const char* kTestLabelsFile = "t10k-labels-idx1-ubyte";

/// Images and their labels, record i being labels[i] and the image of row i
/// of `images`, or of row rows[i] when `rows` is defined (a view of a
/// folder dataset's decoded images: image_folder.hpp).
struct Dataset {
  at::Tensor images;     ///< [N,C,H,W]: float32 in [0,1] (MNIST: [N,1,28,28]), or uint8 0..255
  at::Tensor labels;     ///< [N] int64: 0..9 for MNIST, a class index for folders
  at::Tensor rows = {};  ///< undefined, or [N] int64 rows of `images`
  int64_t size() const;
  /// The images of records `idx` (int64, on the data's device) as float32
  /// in [0,1] (uint8 images divided by 255, as MNIST's IDX bytes are).
  at::Tensor gather(const at::Tensor& idx) const;
  /// The images of records start .. start+len-1, as gather().
  at::Tensor slice(int64_t start, int64_t len) const;
  /// The images' [C,H,W] (what check_input compares with a model's input).
  std::vector<int64_t> image_shape() const;
  /// The same records on `device`.
  Dataset to(const c10::Device& device) const;
  /// Records start .. start+len-1 (views).
  Dataset narrow(int64_t start, int64_t len) const;
};

struct MnistData {
  Dataset train;  ///< from train-*: 60,000 records in the full set
  Dataset test;   ///< from t10k-*: 10,000 records in the full set
};

/// The data folder used when none is given: $MNIST_DATA_DIR if set, else
/// data/mnist in the source tree this binary was built from.
std::string default_data_dir();

/// The image sets mnist-train knows by name. Both come as the same four IDX
/// files (28x28 grayscale, 10 classes); only their folder and the classes'
/// names differ.
enum class DatasetKind { kMnist, kFashionMnist };

/// "mnist", "fashion-mnist".
const char* dataset_name(DatasetKind kind);
std::optional<DatasetKind> parse_dataset(const std::string& name);
/// The ten class names in label order: "0".."9" for MNIST; T-shirt/top ...
/// Ankle boot for Fashion-MNIST (zalandoresearch/fashion-mnist's README).
const std::vector<std::string>& class_names(DatasetKind kind);
/// default_data_dir() for MNIST; for Fashion-MNIST $FASHION_MNIST_DIR if
/// set, else where Debian's dataset-fashion-mnist puts it,
/// /usr/share/datasets/fashion-mnist.
std::string default_data_dir(DatasetKind kind);

/// A model's userDefinedMetadata for `kind`: {"dataset", "classNames"};
/// null for MNIST (models of MNIST carry none, as mnist-node's).
nlohmann::ordered_json dataset_metadata(DatasetKind kind);
/// The dataset a model's metadata names (MNIST when it names none or one
/// this build does not know).
DatasetKind dataset_of(const nlohmann::ordered_json& metadata);

/// A label set: the dataset labels (0..9) a model tells apart, in the order
/// of its outputs (--labels 5-9: output 0 is digit 5). All ten in order
/// unless a model was trained on some classes only.
using LabelSet = std::vector<int64_t>;
LabelSet all_labels();
/// "0-4", "5,6,7,8,9" or both mixed ("0-2,7"): at least two distinct labels
/// in 0..9, kept in the order given. Throws ConfigError saying what is wrong.
LabelSet parse_labels(const std::string& text);
/// "0-4" for a run of consecutive labels, else "5,7,9".
std::string labels_text(const LabelSet& labels);
/// The label set of a model with `outputs` output units: the metadata's
/// "labels" when they are `outputs` distinct labels in 0..9, else 0..outputs-1
/// (a model made elsewhere with fewer classes than ten: its first ones).
LabelSet labels_of(const nlohmann::ordered_json& metadata, int64_t outputs = 10);
/// `metadata` for a model of `kind` trained on `labels`: "dataset",
/// "classNames" (one per output) and "labels" set; for MNIST's ten labels
/// those keys are removed instead (null when nothing else is left), so a
/// plain MNIST model carries none, as mnist-node's. Other keys are kept.
nlohmann::ordered_json with_labels(nlohmann::ordered_json metadata,
                                   DatasetKind kind,
                                   const LabelSet& labels);
/// The class name of each output: the metadata's "classNames" when it holds
/// one string per output, else the names of labels_of(metadata, outputs) in
/// dataset_of(metadata).
std::vector<std::string> class_names_of(const nlohmann::ordered_json& metadata,
                                        int64_t outputs = 10);
/// The records of `data` whose label is in `labels`, in file order,
/// relabelled by their position in `labels` (what a model of that label set
/// is trained and tested on).
Dataset select_labels(const Dataset& data, const LabelSet& labels);

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
