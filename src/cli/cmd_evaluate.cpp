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
                  "/usr/share/datasets/fashion-mnist for Fashion-MNIST)");
  cmd->add_option("--test-limit", o.test_limit, "Use only the first N test records (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", o.json, "Print one JSON object instead of text");
  cmd->add_flag("--gpu", o.gpu, "Evaluate on CUDA");
  add_precision_option(*cmd, o.precision);
  add_onednn_flag(*cmd, o.onednn);
  return cmd;
}

namespace {

/// Class names longer than this many columns are cut, with an ellipsis.
constexpr size_t kMaxNameColumns = 28;
/// Above this many classes the confusion matrix is too wide for a
/// terminal: only --json prints it.
constexpr int64_t kMaxMatrixClasses = 20;

/// The rows' labels: "7" (a digit) or "7 Sneaker", cut to kMaxNameColumns.
std::vector<std::string> row_names(const OutputNames& names) {
  std::vector<std::string> rows;
  for (size_t c = 0; c < names.names.size(); ++c) {
    rows.push_back(truncate_to_width(names.with_name(static_cast<int64_t>(c)), kMaxNameColumns));
  }
  return rows;
}

/// scikit-learn's classification_report, four decimals: a row per class,
/// then accuracy, macro avg and weighted avg. A score whose denominator is
/// 0 is printed as kZeroDivision with a "*" and a note below.
std::string class_table(const ClassMetrics& m, const OutputNames& names, double accuracy) {
  const std::vector<std::string> rows = row_names(names);
  size_t width = display_width("weighted avg");
  for (const std::string& row : rows) {
    width = std::max(width, display_width(row));
  }
  bool undefined = false;
  const auto value = [&undefined](double v, bool is_undefined) {
    undefined = undefined || is_undefined;
    return fmt::format("{:>10.4f}{}", v, is_undefined ? "*" : " ");
  };
  const auto line = [&](const std::string& label, const ClassScores& s) {
    return "  " + pad_to_width(label, width, true) + value(s.precision, s.precision_undefined) +
           value(s.recall, s.recall_undefined) + value(s.f1, s.f1_undefined) +
           fmt::format("{:>10}\n", s.support);
  };
  std::string out =
      "  " + std::string(width, ' ') +
      fmt::format("{:>10} {:>10} {:>10} {:>10}\n", "precision", "recall", "f1-score", "support");
  for (size_t c = 0; c < rows.size(); ++c) {
    out += line(rows[c], m.per_class[c]);
  }
  out += "\n  " + pad_to_width("accuracy", width, true) + std::string(22, ' ') +
         fmt::format("{:>10.4f} {:>10}\n", accuracy, m.macro_avg.support);
  out += line("macro avg", m.macro_avg);
  out += line("weighted avg", m.weighted_avg);
  if (undefined) {
    out += fmt::format(
        "  * {} by convention: the class was never predicted (precision) or has no images "
        "(recall),\n    as scikit-learn's classification_report reports it (zero_division's "
        "default)\n",
        kZeroDivision);
  }
  return out;
}

/// The confusion matrix, rows the true class, columns the predicted one,
/// headed by the digit or the class's index; for more than
/// kMaxMatrixClasses classes, a line saying where it is instead.
std::string confusion_text(const at::Tensor& confusion, const OutputNames& names) {
  const int64_t classes = confusion.size(0);
  if (classes > kMaxMatrixClasses) {
    return fmt::format(
        "\nConfusion matrix: {} classes, too wide to print; --json has it (\"confusion\", "
        "rows: true class, columns: predicted)\n",
        classes);
  }
  const std::vector<std::string> rows = row_names(names);
  size_t width = 0;
  for (const std::string& row : rows) {
    width = std::max(width, display_width(row));
  }
  size_t column = 6;
  for (int64_t c = 0; c < classes; ++c) {
    column = std::max(column, names.short_name(c).size() + 2);
  }
  column = std::max(column, std::to_string(confusion.max().item<int64_t>()).size() + 2);
  std::string out = names.digits ? "\nConfusion matrix (rows: true label, columns: predicted):\n"
                                 : "\nConfusion matrix (rows: true class, columns: predicted, "
                                   "by index):\n";
  out += "  " + std::string(width, ' ');
  for (int64_t c = 0; c < classes; ++c) {
    out += pad_to_width(names.short_name(c), column, false);
  }
  out += "\n";
  const at::Tensor counts = confusion.contiguous();
  const int64_t* n = counts.data_ptr<int64_t>();
  for (int64_t t = 0; t < classes; ++t) {
    out += "  " + pad_to_width(rows[static_cast<size_t>(t)], width, true);
    for (int64_t p = 0; p < classes; ++p) {
      out += pad_to_width(std::to_string(n[t * classes + p]), column, false);
    }
    out += "\n";
  }
  return out;
}

}  // namespace

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
  const std::string data_dir = o.data_dir.empty() ? default_data_dir(dataset) : o.data_dir;
  const Dataset all = load_pair(data_dir, kTestImagesFile, kTestLabelsFile, o.test_limit);
  const Dataset test = select_labels(all, labels);
  if (test.size() == 0) {
    throw DataError(data_dir + ": none of the " + std::to_string(all.size()) +
                    " test images has one of the model's labels (" + labels_text(labels) + ")");
  }
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
    if (names.named) {
      doc["dataset"] = dataset_name(dataset);
      doc["class_names"] = names.names;
    }
    if (labels != all_labels()) {
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
  out += labels == all_labels() ? "" : " of " + labels_text(labels);
  out += "; recall is the class's accuracy):\n";
  out += class_table(metrics, names, r.accuracy);
  out += confusion_text(r.confusion, names);
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace mnist::cli
