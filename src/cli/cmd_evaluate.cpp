// `mnist-train evaluate`: test loss and accuracy of a saved model (ours or
// TF.js's), each class's precision, recall, F1 and support with their
// averages (scikit-learn's classification_report), per-class accuracy and
// the confusion matrix; text or JSON.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <ATen/ATen.h>

#include "cli/app.hpp"
#include "cli/shared.hpp"
#include "mnist/data.hpp"
#include "mnist/device.hpp"
#include "mnist/evaluate.hpp"
#include "mnist/idx.hpp"
#include "mnist/image_folder.hpp"
#include "mnist/report.hpp"
#include "mnist/tfjs_io.hpp"

namespace mnist::cli {

CLI::App* add_evaluate_command(CLI::App& app, EvaluateOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "evaluate",
      "Test loss, accuracy, per-class precision, recall and F1, and confusion matrix of a saved "
      "model");
  cmd->add_option("--model", o.model, "Folder holding model.json and its weight files")->required();
  cmd->add_option("--data-dir", o.data_dir,
                  "Folder with the test IDX files (default: the folder of the dataset the model "
                  "was trained on: $MNIST_DATA_DIR, else data/mnist, for MNIST; "
                  "/usr/share/datasets/fashion-mnist for Fashion-MNIST); or a folder of images, "
                  "one subfolder per class (its test/ subfolder when it has one, else all)");
  cmd->add_option("--cache-dir", o.cache_dir,
                  "Where a folder's decoded images are cached (default: as train's)");
  cmd->add_option("--test-limit", o.test_limit, "Use only the first N test records (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", o.json, "Print one JSON object instead of text");
  cmd->add_flag("--gpu", o.gpu, "Evaluate on CUDA");
  add_precision_option(*cmd, o.precision);
  add_onednn_flag(*cmd, o.onednn);
  return cmd;
}

int run_evaluate(const EvaluateOptions& o) {
  const c10::Device device = device_for_flag(o.gpu);
  configure_cpu_threads(0);
  Model model = load_tfjs(o.model);
  const LabelSet labels = require_classifier(model, o.model);
  const auto classes = static_cast<int64_t>(labels.size());
  const nlohmann::ordered_json& metadata = model->spec().metadata;
  const DatasetKind dataset = dataset_of(metadata);
  // A model of some digits only (--labels) is tested on those; each row of
  // the text says the digit, not its output's index.
  const OutputNames names = output_names(metadata, classes);
  const std::optional<ImageSpec> spec = model_image_spec(model, o.model);
  if (spec && o.data_dir.empty()) {
    throw ConfigError(o.model +
                      ": a model of your own images: give --data-dir, the folder of images to "
                      "test it on (its test/ subfolder, else all its images)");
  }
  DecodeOptions options;
  options.cache_dir = o.cache_dir;
  const ModelTestSet set =
      model_test_set(model, o.model, labels, o.data_dir, o.test_limit, options);
  if (!set.bad.empty()) {
    spdlog::warn("{}: {} images cannot be read and are not counted:{}", set.data_dir,
                 set.bad.size(), bad_images_text(set.bad));
  }
  const Dataset& test = set.data;
  model->to(device);
  const Precision precision = resolve_precision(o.precision, device);
  apply_onednn_flag(o.onednn, device, precision);
  const EvalResult r = evaluate(model, test, kEvalBatchSize, precision);
  const at::Tensor per_class = per_class_accuracy(r.confusion);
  const ClassMetrics metrics = per_class_metrics(r.confusion);

  if (o.json) {
    // The first keys as before the per-class scores came (scripts read
    // them); the names and scores after the matrix.
    nlohmann::ordered_json doc;
    doc["model"] = o.model;
    doc["count"] = r.count;
    doc["loss"] = r.loss;
    doc["accuracy"] = r.accuracy;
    if (names.named || spec) {
      doc["dataset"] = spec ? "folder" : dataset_name(dataset);
      doc["class_names"] = names.names;
    }
    if (!spec && labels != all_labels()) {
      doc["labels"] = labels;
    }
    std::vector<double> acc(per_class.data_ptr<double>(), per_class.data_ptr<double>() + classes);
    doc["per_class_accuracy"] = acc;
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (int64_t t = 0; t < classes; ++t) {
      const at::Tensor row = r.confusion[t].contiguous();
      rows.push_back(
          std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + classes));
    }
    doc["confusion"] = rows;
    doc["class_names"] = names.names;
    const auto scores = [](const ClassScores& s) {
      return nlohmann::ordered_json{
          {"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}, {"support", s.support}};
    };
    nlohmann::ordered_json per = nlohmann::ordered_json::array();
    for (int64_t c = 0; c < classes; ++c) {
      nlohmann::ordered_json entry = {{"name", names.names[static_cast<size_t>(c)]}};
      entry.update(scores(metrics.per_class[static_cast<size_t>(c)]));
      per.push_back(entry);
    }
    doc["per_class"] = per;
    doc["macro_avg"] = scores(metrics.macro_avg);
    doc["weighted_avg"] = scores(metrics.weighted_avg);
    doc["zero_division"] = kZeroDivision;
    // Class names come from folder names: bytes that are not UTF-8 are
    // written as U+FFFD rather than refused.
    std::printf("%s\n",
                doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    return 0;
  }
  print_evaluation(r);
  std::string out = "\nPer class (test images";
  out += spec || labels == all_labels() ? "" : " of " + labels_text(labels);
  out += "; recall is the class's accuracy):\n";
  out += class_metrics_text(metrics, names, r.accuracy);
  out += confusion_text(r.confusion, names);
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace mnist::cli
