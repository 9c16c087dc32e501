// What several commands share: flags that more than one command takes, the
// wording of the core's remedies as this CLI's flags, the device and save
// folder checks that name the flag which gave the value, and the
// Evaluation lines.
#pragma once

#include <limits>
#include <optional>
#include <string>

#include <c10/core/Device.h>
#include <CLI/CLI.hpp>

#include "mnist/data.hpp"
#include "mnist/device.hpp"
#include "mnist/error.hpp"
#include "mnist/evaluate.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/model.hpp"

namespace mnist::cli {

/// How this CLI words a core Remedy: text to append to the error, naming
/// the flag to use ("" for kNone).
std::string remedy_hint(Remedy remedy);

/// select_device(gpu), but a CUDA that cannot be used is reported as
/// "--gpu: <why>" (DeviceError).
c10::Device device_for_flag(bool gpu);

/// The exclusive lock on a model folder for one save (FolderLock::wait),
/// logging "DIR: waiting for another mnist-train (pid N) to finish saving
/// there" while another writer holds it; none when DIR is `checkpoint_dir`,
/// whose lock the training already holds.
std::optional<FolderLock> lock_model_folder(const std::string& dir,
                                            const std::string& checkpoint_dir = "");

/// The largest --weight-shard-size (4 GiB).
constexpr long long kMaxShardBytes = 1LL << 32;

/// An integer flag's bounds, with a plain message ("must be an integer of
/// at least 1, got '0'", "... of at most 1024, got '10000'") instead of
/// CLI11's range text.
CLI::Validator integer_in(long long min, long long max);

/// The most --threads accepted: more only multiplies idle OpenMP threads.
constexpr long long kMaxThreads = 1024;

/// An integer option from `min` to `max` (default: the largest T), its
/// default shown in --help.
template <typename T>
void add_count_option(CLI::App& app,
                      const std::string& names,
                      T& value,
                      const std::string& help,
                      long long min,
                      long long max = std::numeric_limits<T>::max()) {
  app.add_option(names, value, help)->capture_default_str()->check(integer_in(min, max));
}

/// A number with 0 <= x < 1 (the validation split).
CLI::Validator fraction_below_one();

/// A finite number accepted by `ok`, else "must be <what>, got '<text>'";
/// --help shows `range` (e.g. ">0").
CLI::Validator real_number(bool (*ok)(double), const std::string& what, const std::string& range);
bool is_positive(double x);         ///< x > 0
bool is_non_negative(double x);     ///< x >= 0
bool is_between_0_and_1(double x);  ///< 0 < x < 1

/// Throws ConfigError unless `model` ends in a softmax over 2 to 10
/// classes; returns their labels (labels_of its metadata).
LabelSet require_classifier(const Model& model, const std::string& origin);

/// --precision: "fp32" or "bf16" (CLI11 refuses others).
void add_precision_option(CLI::App& app, std::string& precision);

/// The --precision value as run: bf16 on a CPU without bf16 instructions
/// would be far slower than fp32, so it warns and uses fp32.
Precision resolve_precision(const std::string& name, const c10::Device& device);

/// --no-onednn's former name, still accepted, not shown by --help.
constexpr const char* kFormerOnednnFlag = "--libtorch-conv";

/// --no-onednn (and kFormerOnednnFlag): sets `onednn` to false.
void add_onednn_flag(CLI::App& app, bool& onednn);

/// CLI11's help layout, leaving out option names kept only so that old
/// commands still work (kFormerOnednnFlag).
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_option_name(const CLI::Option* opt, bool is_positional) const override;
};

/// Applies --no-onednn and says, on the CPU, which convolutions and pooling
/// run.
void apply_onednn_flag(bool onednn, const c10::Device& device, Precision precision);

/// "Evaluation result:\n  Loss = 0.020; Accuracy = 0.995\n", as mnist-node
/// prints it, on stdout (flushed).
void print_evaluation(const EvalResult& result);

/// How evaluate's and predict's text names a model's outputs: a model of
/// digits (MNIST's, all or some, --labels; classes named "0".."9") by the
/// digit each output stands for; any other (Fashion-MNIST, a folder of
/// images) by its index, and its class name where one is wanted
/// ("7 Sneaker").
struct OutputNames {
  std::vector<std::string> names;  ///< class_names_of(metadata, outputs)
  bool named = false;              ///< not MNIST's ten names
  bool digits = true;              ///< every name a single digit

  /// "7" (a digit), or "7 Sneaker".
  std::string with_name(int64_t output) const;
  /// "7" (a digit), or "7" (the index): a table column.
  std::string short_name(int64_t output) const;
};
OutputNames output_names(const nlohmann::ordered_json& metadata, int64_t outputs);

/// The terminal columns `text` (UTF-8) takes: one per code point, two for
/// East Asian wide and fullwidth ones and most emoji, none for combining
/// marks and zero-width ones; each byte that is not valid UTF-8 counts one.
size_t display_width(const std::string& text);
/// `text` cut at a code point to at most `columns` columns, ending in "…"
/// when cut (columns >= 1).
std::string truncate_to_width(const std::string& text, size_t columns);
/// scikit-learn's classification_report in four decimals: a row per class
/// named by OutputNames::with_name (cut at 28 columns with "…"), then
/// accuracy, macro avg and weighted avg; a score whose denominator is 0 is
/// printed as kZeroDivision with a "*" and a note below the table.
std::string class_metrics_text(const ClassMetrics& metrics,
                               const OutputNames& names,
                               double accuracy);
/// The confusion matrix ([K,K] int64), rows the true class (named as in
/// class_metrics_text), columns the predicted one headed by
/// OutputNames::short_name; above 20 classes, only a line saying that
/// --json has it.
std::string confusion_text(const at::Tensor& confusion, const OutputNames& names);
/// `text` padded with spaces to `columns` columns, on the right (left
/// aligned) or on the left (right aligned); as is when it is wider.
std::string pad_to_width(const std::string& text, size_t columns, bool align_left);

}  // namespace mnist::cli
