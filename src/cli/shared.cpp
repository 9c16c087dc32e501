// Flags, checks and output that several commands share (shared.hpp).
#include "cli/shared.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <ATen/ATen.h>

#include "mnist/fs_util.hpp"
#include "mnist/idx.hpp"
#include "mnist/onednn.hpp"

namespace mnist::cli {

std::string remedy_hint(Remedy remedy) {
  // In Remedy's order.
  static constexpr const char* kHints[] = {
      "",
      " (or point --data-dir / MNIST_DATA_DIR at a folder holding them)",
      "; if it shows dark ink on a light background, add --invert",
      "; train without CUDA graphs (mnist-train --no-cuda-graphs)",
      " (train with --model-save-path first)",
      "; try --port 0 for any free port",
      "; choose another --model-save-path",
      "; choose another --checkpoint-dir",
      "; resume with the same flags",
      "; give --image-size H,W (e.g. --image-size 64,64) to resize them all to one size",
      "; fix or remove them, or add --skip-bad-images to train without them",
  };
  return kHints[static_cast<size_t>(remedy)];
}

c10::Device device_for_flag(bool gpu) {
  if (gpu) {
    if (const auto reason = cuda_unavailable_reason()) {
      throw DeviceError("--gpu: " + *reason);
    }
  }
  return select_device(gpu);
}

CLI::Validator integer_in(long long min, long long max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        try {
          size_t used = 0;
          const long long value = std::stoll(text, &used);
          if (used == text.size() && value >= min && value <= max) {
            return {};
          }
          if (used == text.size() && value > max) {
            return "must be an integer of at most " + std::to_string(max) + ", got '" + text + "'";
          }
        } catch (const std::out_of_range&) {
          if (!text.empty() && text[0] != '-') {
            return "must be an integer of at most " + std::to_string(max) + ", got '" + text + "'";
          }
        } catch (const std::exception&) {
        }
        return "must be an integer of at least " + std::to_string(min) + ", got '" + text + "'";
      },
      max == std::numeric_limits<long long>::max() || max == std::numeric_limits<int>::max()
          ? ">=" + std::to_string(min)
          : std::to_string(min) + ".." + std::to_string(max));
}

CLI::Validator fraction_below_one() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        try {
          size_t used = 0;
          const double value = std::stod(text, &used);
          if (used == text.size() && value >= 0.0 && value < 1.0) {
            return {};
          }
        } catch (const std::exception&) {
        }
        return "must be a number with 0 <= split < 1 (e.g. 0.15), got '" + text + "'";
      },
      "0<=x<1");
}

CLI::Validator real_number(bool (*ok)(double), const std::string& what, const std::string& range) {
  return CLI::Validator(
      [ok, what](std::string& text) -> std::string {
        try {
          size_t used = 0;
          const double value = std::stod(text, &used);
          if (used == text.size() && std::isfinite(value) && ok(value)) {
            return {};
          }
        } catch (const std::exception&) {
        }
        return "must be " + what + ", got '" + text + "'";
      },
      range);
}

bool is_positive(double x) { return x > 0; }
bool is_non_negative(double x) { return x >= 0; }
bool is_between_0_and_1(double x) { return x > 0 && x < 1; }

LabelSet require_classifier(const Model& model, const std::string& origin) {
  const int64_t outputs = model_outputs(model);
  const nlohmann::ordered_json& metadata = model->spec().metadata;
  // A model of a folder's classes names each of its outputs, however many.
  const bool named = metadata.is_object() && metadata.contains("classNames") &&
                     static_cast<int64_t>(class_names_of(metadata, outputs).size()) == outputs;
  if (outputs < 2 || (outputs > kNumClasses && !named) || !model->ends_in_softmax()) {
    throw ConfigError(origin +
                      ": the model must end in a softmax over 2 to 10 classes (10 units for "
                      "all MNIST digits), or over as many classes as its metadata names, to "
                      "classify images");
  }
  if (outputs > kNumClasses) {
    LabelSet all(static_cast<size_t>(outputs));
    for (int64_t c = 0; c < outputs; ++c) {
      all[static_cast<size_t>(c)] = c;
    }
    return all;
  }
  return labels_of(metadata, outputs);
}

void add_precision_option(CLI::App& app, std::string& precision) {
  app.add_option("--precision", precision,
                 "Compute precision: fp32, or bf16 (bfloat16 autocast; weights, optimizer "
                 "state and saved files stay float32)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
}

Precision resolve_precision(const std::string& name, const c10::Device& device) {
  if (name != "bf16") {
    return Precision::kFloat32;
  }
  if (device.is_cpu() && !cpu_has_bf16()) {
    spdlog::warn(
        "--precision bf16: this CPU has no bfloat16 instructions (AVX512_BF16 or "
        "AMX); training in fp32 instead");
    return Precision::kFloat32;
  }
  return Precision::kBFloat16;
}

void add_onednn_flag(CLI::App& app, bool& onednn) {
  // --libtorch-conv: the flag's name before it also covered pooling, kept so
  // that existing commands still work; HelpFormatter leaves it out of --help.
  app.add_flag_callback(
      std::string("--no-onednn,") + kFormerOnednnFlag, [&onednn] { onednn = false; },
      "On the CPU: run every convolution and max pooling through libtorch instead of calling "
      "oneDNN directly (Winograd kernels in fp32; float32 weight gradients and fused ReLU in "
      "bf16; oneDNN's pooling). Slower; results differ only in rounding");
}

std::string HelpFormatter::make_option_name(const CLI::Option* opt, bool is_positional) const {
  std::string names = CLI::Formatter::make_option_name(opt, is_positional);
  const std::string former = std::string(",") + kFormerOnednnFlag;
  if (const size_t at = names.find(former); at != std::string::npos) {
    names.erase(at, former.size());
  }
  return names;
}

void apply_onednn_flag(bool onednn, const c10::Device& device, Precision precision) {
  set_onednn_enabled(onednn);
  if (!device.is_cpu()) {
    return;
  }
  spdlog::info("{}", onednn ? describe_cpu_kernels(precision == Precision::kBFloat16)
                            : "convolutions: libtorch's (--no-onednn); max pooling: libtorch's");
}

std::string OutputNames::with_name(int64_t output) const {
  const auto& name = names.at(static_cast<size_t>(output));
  return digits ? name : std::to_string(output) + (named ? " " + name : "");
}

std::string OutputNames::short_name(int64_t output) const {
  return digits ? names.at(static_cast<size_t>(output)) : std::to_string(output);
}

OutputNames output_names(const nlohmann::ordered_json& metadata, int64_t outputs) {
  OutputNames out;
  out.names = class_names_of(metadata, outputs);
  out.named = out.names != class_names(DatasetKind::kMnist);
  // Not dataset_of: a model of a folder names no dataset this build knows,
  // yet its classes are not digits.
  out.digits = std::all_of(out.names.begin(), out.names.end(), [](const std::string& n) {
    return n.size() == 1 && n[0] >= '0' && n[0] <= '9';
  });
  return out;
}

namespace {

/// One code point of `text` at `at`: its value and length in bytes; a byte
/// that does not start valid UTF-8 (or an overlong or surrogate form) is
/// returned alone, as -1.
std::pair<int32_t, size_t> next_code_point(const std::string& text, size_t at) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char b0 = byte(at);
  if (b0 < 0x80) {
    return {b0, 1};
  }
  const size_t len = b0 > 0xF4 ? 0 : b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 ? 2 : 0;
  if (len == 0 || at + len > text.size()) {
    return {-1, 1};
  }
  int32_t cp = b0 & (0x7F >> len);
  for (size_t i = 1; i < len; ++i) {
    if ((byte(at + i) & 0xC0) != 0x80) {
      return {-1, 1};
    }
    cp = (cp << 6) | (byte(at + i) & 0x3F);
  }
  const int32_t least = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
  if (cp < least || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return {-1, 1};
  }
  return {cp, len};
}

/// Columns of one code point (-1: an invalid byte, one column).
size_t code_point_width(int32_t cp) {
  if (cp < 0) {
    return 1;
  }
  // Combining marks, zero-width space/joiners, variation selectors.
  if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
      (cp >= 0x1DC0 && cp <= 0x1DFF) || (cp >= 0x20D0 && cp <= 0x20FF) ||
      (cp >= 0xFE20 && cp <= 0xFE2F) || (cp >= 0x200B && cp <= 0x200F) ||
      (cp >= 0xFE00 && cp <= 0xFE0F) || cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) {
    return 0;
  }
  // East Asian wide and fullwidth blocks, and the emoji planes.
  if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
      (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
      (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
      (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
      (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
      (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
      (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD)) {
    return 2;
  }
  return 1;
}

}  // namespace

size_t display_width(const std::string& text) {
  size_t columns = 0;
  for (size_t at = 0; at < text.size();) {
    const auto [cp, len] = next_code_point(text, at);
    columns += code_point_width(cp);
    at += len;
  }
  return columns;
}

std::string truncate_to_width(const std::string& text, size_t columns) {
  if (display_width(text) <= columns) {
    return text;
  }
  // Room for the ellipsis (one column).
  std::string out;
  size_t used = 0;
  for (size_t at = 0; at < text.size();) {
    const auto [cp, len] = next_code_point(text, at);
    const size_t w = code_point_width(cp);
    if (used + w + 1 > columns) {
      break;
    }
    out.append(text, at, len);
    used += w;
    at += len;
  }
  return out + "\u2026";
}

std::string pad_to_width(const std::string& text, size_t columns, bool align_left) {
  const size_t width = display_width(text);
  if (width >= columns) {
    return text;
  }
  const std::string pad(columns - width, ' ');
  return align_left ? text + pad : pad + text;
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

}  // namespace

std::string class_metrics_text(const ClassMetrics& m, const OutputNames& names, double accuracy) {
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

void print_evaluation(const EvalResult& result) {
  std::printf("Evaluation result:\n  Loss = %.3f; Accuracy = %.3f\n", result.loss, result.accuracy);
  std::fflush(stdout);
}

std::optional<FolderLock> lock_model_folder(const std::string& dir,
                                            const std::string& checkpoint_dir) {
  std::error_code ec;
  if (!checkpoint_dir.empty() && std::filesystem::equivalent(dir, checkpoint_dir, ec)) {
    return std::nullopt;
  }
  return FolderLock::wait(dir, [&dir](const std::string& pid) {
    spdlog::info("{}: waiting for another mnist-train{} to finish saving there", dir,
                 pid.empty() ? "" : " (pid " + pid + ")");
  });
}

}  // namespace mnist::cli
