// Checks and settings shared by the commands that run a model.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "mnist/device.hpp"
#include "mnist/error.hpp"
#include "mnist/idx.hpp"
#include "mnist/model.hpp"
#include "mnist/winograd.hpp"

namespace mnist::cli {

/// Throws ConfigError unless `model` outputs 10 class probabilities.
inline void require_classifier(const Model& model, const std::string& origin) {
  const auto& out = model->spec().layers.back().output_shape;
  if (out.size() != 1 || out[0] != kNumClasses || !model->ends_in_softmax()) {
    throw ConfigError(origin + ": the model must end in a 10-unit softmax to classify MNIST "
                      "digits");
  }
}

/// The --precision flag: "fp32" or "bf16". bf16 on a CPU without bf16
/// instructions would be slower than fp32: warn and use fp32.
inline Precision resolve_precision(const std::string& name, const c10::Device& device) {
  if (name != "bf16") {
    return Precision::kFloat32;
  }
  if (device.is_cpu() && !cpu_has_bf16()) {
    spdlog::warn("--precision bf16: this CPU has no bfloat16 instructions (AVX512_BF16 or "
                 "AMX); training in fp32 instead");
    return Precision::kFloat32;
  }
  return Precision::kBFloat16;
}

/// Adds --precision to a command.
inline void add_precision_option(CLI::App& app, std::string& precision) {
  app.add_option("--precision", precision,
                 "Compute precision: fp32, or bf16 (bfloat16 autocast; weights, optimizer "
                 "state and saved files stay float32)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
}

/// Adds --no-winograd to a command.
inline void add_winograd_flag(CLI::App& app, bool& winograd) {
  app.add_flag_callback(
      "--no-winograd", [&winograd] { winograd = false; },
      "On the CPU in fp32: compute every convolution with libtorch's direct kernels instead "
      "of oneDNN's Winograd ones (slower; results differ only in float32 rounding)");
}

/// Applies --no-winograd and says, on the CPU, which convolutions run.
inline void apply_winograd_flag(bool winograd, const c10::Device& device, Precision precision) {
  set_winograd_enabled(winograd);
  if (!device.is_cpu()) {
    return;
  }
  const char* how = !winograd                           ? "direct (--no-winograd)"
                    : precision != Precision::kFloat32 ? "direct (bf16)"
                    : winograd_available()
                        ? "Winograd (oneDNN) where the layer allows, else direct"
                        : "direct (this build or CPU has no oneDNN Winograd kernels)";
  spdlog::info("convolutions: {}", how);
}

}  // namespace mnist::cli
