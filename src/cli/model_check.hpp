// Checks and settings shared by the commands that run a model.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "mnist/device.hpp"
#include "mnist/error.hpp"
#include "mnist/idx.hpp"
#include "mnist/model.hpp"
#include "mnist/onednn_conv.hpp"

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

/// Adds --libtorch-conv to a command.
inline void add_conv_flag(CLI::App& app, bool& onednn_conv) {
  app.add_flag_callback(
      "--libtorch-conv", [&onednn_conv] { onednn_conv = false; },
      "On the CPU: run every convolution and max pooling through libtorch instead of calling "
      "oneDNN directly (Winograd kernels in fp32; float32 weight gradients and fused ReLU in "
      "bf16; oneDNN's pooling). Slower; results differ only in rounding");
}

/// Applies --libtorch-conv and says, on the CPU, which convolutions and
/// pooling run.
inline void apply_conv_flag(bool onednn_conv, const c10::Device& device, Precision precision) {
  set_onednn_conv_enabled(onednn_conv);
  if (!device.is_cpu()) {
    return;
  }
  const char* how =
      !onednn_conv            ? "libtorch's (--libtorch-conv)"
      : !winograd_available() ? "libtorch's (this build or CPU lacks oneDNN's kernels)"
      : precision == Precision::kFloat32
          ? "oneDNN Winograd where the layer allows (3x3, stride 1, channels a multiple of 16), "
            "else libtorch's"
          : "oneDNN bf16 with float32 weight gradients (3x3, stride 1), else libtorch's";
  spdlog::info("convolutions: {}; max pooling: {}", how,
               onednn_conv && onednn_built() ? "oneDNN's" : "libtorch's");
}

}  // namespace mnist::cli
