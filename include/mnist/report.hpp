// `mnist-train report`: what a training run left in its model folder
// (model.json, weights.bin, history.json, metadata.json) turned into one
// self-contained HTML page (docs/report.md): the learning curves, the
// model's evaluation on its test images (confusion matrix, per-class
// precision, recall and F1, the most confidently wrong images), its
// parameters and the size of its weights per quantization; for several runs
// a table of their final figures with mean and spread and their curves
// overlaid. Also the test images a model is evaluated on, which `evaluate`
// shares.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "mnist/data.hpp"
#include "mnist/evaluate.hpp"
#include "mnist/image_folder.hpp"
#include "mnist/model.hpp"
#include "mnist/tfjs_io.hpp"
#include "mnist/train.hpp"

namespace mnist {

// ---- A model's test images (evaluate and report) ---------------------------

/// The test images a model is evaluated on and where they came from.
struct ModelTestSet {
  Dataset data;               ///< labelled by the model's outputs
  std::string data_dir;       ///< the folder they came from
  bool folder = false;        ///< a folder of images (else MNIST's IDX files)
  std::vector<BadImage> bad;  ///< a folder's images that cannot be read (not counted)
};

/// The test images of `model` (loaded from `model_dir`, which names it in
/// errors), whose outputs stand for `labels`:
/// - a model of MNIST's 28x28 digits (model_image_spec says so): the t10k
///   IDX files of `data_dir` ("": default_data_dir of its dataset), the
///   records of `labels` relabelled by their output;
/// - any other model: the folder of images `data_dir`, its images read at
///   model_image_spec's size and colours and labelled by the model's class
///   of their folder (folder_test_set: its test/ subset, else all its
///   images), or, when `held_out` names some of its files (the test files
///   a training split off it, history.json's data.files.test), those only.
/// `limit` > 0: the first `limit` records (held-out files: `limit` of them
/// spread over all). Throws ConfigError for a folder model without
/// `data_dir`, a folder of images for an MNIST model or IDX files for a
/// folder model; DataError when no image can be read or none has one of
/// the model's labels.
ModelTestSet model_test_set(const Model& model,
                            const std::string& model_dir,
                            const LabelSet& labels,
                            const std::string& data_dir,
                            int64_t limit,
                            const DecodeOptions& options,
                            const std::vector<std::string>& held_out = {});

// ---- The figures of one run ------------------------------------------------

/// A test image the model got wrong.
struct WrongImage {
  int64_t index = 0;         ///< its record in the test set
  int64_t label = 0;         ///< its true class (the model's output index)
  int64_t predicted = 0;     ///< the class the model gave it
  double confidence = 0.0;   ///< the model's probability of `predicted`
  double label_prob = 0.0;   ///< the model's probability of `label`
  std::vector<uint8_t> hwc;  ///< its pixels, [H,W,C] row-major
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
};

/// The at most `count` records whose predicted class (the argmax of
/// `probabilities`, [N,K] float, first of equals) is not their label
/// (`labels`, [N] integer), most confident first: by the probability of
/// the predicted class, descending; equal ones in record order. Fills
/// index, label, predicted, confidence and label_prob (no pixels).
std::vector<WrongImage> most_confidently_wrong(const at::Tensor& probabilities,
                                               const at::Tensor& labels,
                                               int64_t count);

/// One layer's row of the model's summary.
struct LayerParams {
  std::string name;
  std::string class_name;
  std::string output_shape;  ///< as the summary prints it: "[null,10]"
  int64_t params = 0;
  bool trainable = true;
};

/// The parameters per layer (the summary's rows, summary_text).
std::vector<LayerParams> layer_params(const Model& model);

/// What weights.bin takes in one storage (tfjs_io.hpp: float32, or as
/// the TF.js converter's quantization writes it).
struct StoredSize {
  WeightStorage storage = WeightStorage::kFloat32;
  uint64_t bytes = 0;
};

/// The size of `model`'s weights.bin stored as float32, float16, uint16 and
/// uint8, in that order: the bytes weights_bin writes (each tensor really
/// quantized, as the converter quantizes it).
std::vector<StoredSize> stored_sizes(const Model& model);

/// One run's figures.
struct RunReport {
  std::string dir;   ///< the run's folder, as given
  std::string name;  ///< the topology's name
  nlohmann::ordered_json settings;
  std::string device;
  std::string generated_by;
  std::vector<EpochStats> epochs;  ///< history.json's epochs
  double total_seconds = 0.0;
  /// history.json's "test": the training's own final evaluation.
  double history_test_loss = 0.0;
  double history_test_acc = 0.0;
  int64_t history_test_count = 0;
  std::vector<std::string> class_names;  ///< one per output
  Shape input_shape;
  std::string data_dir;    ///< where the report's test images came from
  bool folder = false;     ///< a folder of images
  int64_t bad_images = 0;  ///< of it, left out
  EvalResult test;         ///< the report's evaluation of the saved model
  ClassMetrics metrics;    ///< per_class_metrics(test.confusion)
  std::vector<WrongImage> wrong;
  std::vector<LayerParams> layers;
  int64_t total_params = 0;
  int64_t trainable_params = 0;
  std::vector<StoredSize> sizes;
};

/// How runs are reported.
struct ReportSettings {
  std::string data_dir;    ///< the test images ("": where each run's history.json says)
  int64_t test_limit = 0;  ///< > 0: the first N test records only
  int64_t wrong = 16;      ///< how many of the most confidently wrong images to show
  DecodeOptions decode;    ///< a folder's decoding and cache
};

/// Throws DataError unless `dir` is a folder holding model.json and
/// history.json, as a training's --model-save-path leaves it (checked
/// before any run is evaluated).
void check_run_folder(const std::string& dir);

/// The run in `dir`: its history.json read (DataError when it has none or it
/// is not a training's record; FormatError when malformed), `model` (loaded
/// from `dir`, outputs `labels`) evaluated on its test images
/// (model_test_set; without options.data_dir, the folder history.json's
/// "data" names, else its settings' data_dir, else the dataset's default;
/// of a folder without test/, the files its training held out).
RunReport make_run_report(const std::string& dir,
                          Model& model,
                          const LabelSet& labels,
                          const ReportSettings& options);

// ---- Several runs ----------------------------------------------------------

/// The mean and the sample standard deviation (n - 1 in the denominator,
/// as numpy's std(ddof=1)) of the finite values of a figure; `n` counts
/// them. NaN mean for none, NaN std for fewer than two.
struct Spread {
  double mean = 0.0;
  double std = 0.0;
  int64_t n = 0;
};
Spread mean_and_spread(const std::vector<double>& values);

// ---- The page --------------------------------------------------------------

/// `text` made safe as HTML text and attribute values: & < > " ' as
/// entities, bytes that are not UTF-8 as U+FFFD, control characters other
/// than tab and newline as U+FFFD (class names come from folder names).
std::string html_escape(const std::string& text);

/// `bytes` in base64 (RFC 4648, padded), for data: URLs.
std::string base64(const std::string& bytes);

/// A PNG of [H,W,C] uint8 pixels (C 1 or 3), through libspng.
std::string png_bytes(const std::vector<uint8_t>& hwc,
                      int64_t height,
                      int64_t width,
                      int64_t channels);

/// The report of `runs` (at least one, all of the same classes) as one
/// HTML document that needs nothing else: inline CSS, charts as inline SVG,
/// images as data: URLs, no script. Elements the test reads carry data-
/// attributes (docs/report.md).
std::string report_html(const std::vector<RunReport>& runs);

}  // namespace mnist
