// `mnist-train convert`: a saved model saved again, its weights stored as
// float32 or quantized as tensorflowjs_converter quantizes them, into a folder
// (the same one too) by the crash-safe save, one writer at a time.
#include <spdlog/spdlog.h>

#include <filesystem>

#include "cli/app.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/tfjs_io.hpp"

namespace mnist::cli {

void add_quantize_option(CLI::App& app, std::string& value) {
  app.add_option("--quantize", value,
                 "Store the saved weights as uint8 or uint16 (affine, one min and scale per "
                 "tensor) or float16, as tensorflowjs_converter --quantize_* does; TF.js "
                 "dequantizes them when it loads the model (default: float32)")
      ->check(CLI::IsMember({"uint8", "uint16", "float16"}));
}

WeightStorage storage_of(const std::string& quantize) {
  return quantize.empty() ? WeightStorage::kFloat32 : parse_storage(quantize).value();
}

CLI::App* add_convert_command(CLI::App& app, ConvertOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Save a model again into --out (the same folder too), its weights stored as float32 or "
      "quantized (--quantize)");
  cmd->add_option("--model", o.model, "Folder holding model.json and its weight files")->required();
  cmd->add_option("--out", o.out, "Folder to save the model into (created if missing)")->required();
  add_quantize_option(*cmd, o.quantize);
  return cmd;
}

int run_convert(const ConvertOptions& o) {
  const Model model = load_tfjs(o.model);
  ensure_writable_dir(o.out, "model folder");
  const WeightStorage storage = storage_of(o.quantize);
  {
    const FolderLock lock = FolderLock::wait(o.out, [&o](const std::string& pid) {
      spdlog::info("{}: waiting for another mnist-train{} to finish saving there", o.out,
                   pid.empty() ? "" : " (pid " + pid + ")");
    });
    save_tfjs(model, o.out, storage);
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(std::filesystem::path(o.out) / kWeightsFile, ec);
  spdlog::info("saved {} with {} weights ({} bytes)", o.out, storage_name(storage), ec ? 0 : bytes);
  return 0;
}

}  // namespace mnist::cli
