// `mnist-train convert`: a saved model saved again, its weights stored as
// float32 or quantized as tensorflowjs_converter quantizes them, in one file or
// in shards, into a folder (the same one too) by the crash-safe save, one
// writer at a time; or (--to onnx) exported to one ONNX file (onnx_export.hpp).
#include <spdlog/spdlog.h>

#include "cli/app.hpp"
#include "cli/shared.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/onnx_export.hpp"
#include "mnist/tfjs_io.hpp"

namespace mnist::cli {

void add_save_format_options(CLI::App& app, std::string& quantize, uint64_t& shard_size) {
  app.add_option("--quantize", quantize,
                 "Store the saved weights as uint8 or uint16 (affine, one min and scale per "
                 "tensor) or float16, as tensorflowjs_converter --quantize_* does; TF.js "
                 "dequantizes them when it loads the model (default: float32)")
      ->check(CLI::IsMember({"uint8", "uint16", "float16"}));
  app.add_option("--weight-shard-size", shard_size,
                 "Cut the saved weights into files group1-shard1ofN.bin ... of at most BYTES "
                 "each, as tensorflowjs_converter --weight_shard_size_bytes does (it uses "
                 "4194304); a tensor may straddle two files (default: one weights.bin)")
      ->type_name("BYTES")
      ->check(integer_in(1, kMaxShardBytes));
}

SaveFormat save_format_of(const std::string& quantize, uint64_t shard_size) {
  SaveFormat format;
  format.storage = quantize.empty() ? WeightStorage::kFloat32 : parse_storage(quantize).value();
  format.shard_bytes = shard_size;
  return format;
}

CLI::App* add_convert_command(CLI::App& app, ConvertOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Save a model again into --out (the same folder too), its weights stored as float32 or "
      "quantized (--quantize), in one file or in shards (--weight-shard-size); or export it to "
      "ONNX (--to onnx)");
  cmd->add_option("--model", o.model, "Folder holding model.json and its weight files")->required();
  cmd->add_option("--out", o.out,
                  "Folder to save the model into (created if missing); with --to onnx, the "
                  "ONNX file to write (its folder must exist)")
      ->required();
  cmd->add_option("--to", o.to,
                  "tfjs: the TF.js Layers format (model.json and weight files); onnx: one ONNX "
                  "file (opset 13) that computes what TF.js's predict() does, its input NHWC as "
                  "TF.js's (default: tfjs)")
      ->check(CLI::IsMember({"tfjs", "onnx"}));
  add_save_format_options(*cmd, o.quantize, o.weight_shard_size);
  return cmd;
}

namespace {

int run_onnx_export(const ConvertOptions& o) {
  if (!o.quantize.empty() || o.weight_shard_size != 0) {
    throw ConfigError(std::string(o.quantize.empty() ? "--weight-shard-size" : "--quantize") +
                      " applies to --to tfjs only: an ONNX file holds float32 weights, in one "
                      "file");
  }
  const Model model = load_tfjs(o.model);
  const uint64_t bytes = save_onnx(model, o.model, o.out);
  const OnnxSignature s = onnx_signature(model);
  const auto shape = [](const std::vector<int64_t>& dims) {
    std::string text = "[";
    for (const int64_t d : dims) {
      text += (text.size() > 1 ? "," : "") + (d < 0 ? std::string("batch") : std::to_string(d));
    }
    return text + "]";
  };
  spdlog::info("saved {} (ONNX, opset {}, {} bytes): input '{}' {}, output '{}' {}", o.out,
               kOnnxOpset, bytes, s.input_name, shape(s.input_shape), s.output_name,
               shape(s.output_shape));
  return 0;
}

}  // namespace

int run_convert(const ConvertOptions& o) {
  if (o.to == "onnx") {
    return run_onnx_export(o);
  }
  const Model model = load_tfjs(o.model);
  const SaveFormat format = save_format_of(o.quantize, o.weight_shard_size);
  if (const auto problem = save_format_problem(model, format)) {
    throw ConfigError(*problem);
  }
  ensure_writable_dir(o.out, "model folder");
  SavedFiles saved;
  {
    const auto lock = lock_model_folder(o.out);
    saved = save_tfjs(model, o.out, format);
  }
  spdlog::info("saved {} with {} weights ({} bytes in {})", o.out, storage_name(format.storage),
               saved.weight_bytes,
               saved.weight_files.size() == 1
                   ? saved.weight_files.front()
                   : std::to_string(saved.weight_files.size()) + " files, " +
                         saved.weight_files.front() + " ...");
  return 0;
}

}  // namespace mnist::cli
