// Flags, checks and output that several commands share (shared.hpp).
#include "cli/shared.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

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
  out.digits = dataset_of(metadata) == DatasetKind::kMnist;
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
