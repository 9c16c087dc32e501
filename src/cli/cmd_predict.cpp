// `mnist-train predict`: the class and ten probabilities for each image
// (PNG/PGM, prepared like MNIST) or for a record of an IDX file.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include <ATen/ATen.h>

#include "cli/app.hpp"
#include "cli/shared.hpp"
#include "mnist/data.hpp"
#include "mnist/device.hpp"
#include "mnist/evaluate.hpp"
#include "mnist/idx.hpp"
#include "mnist/image.hpp"
#include "mnist/image_folder.hpp"
#include "mnist/tfjs_io.hpp"

namespace mnist::cli {

CLI::App* add_predict_command(CLI::App& app, PredictOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "predict",
      "Classify digit images (PNG, JPEG or PGM, any size: made grayscale, cropped, "
      "scaled and centred like MNIST) or a record of an IDX file");
  cmd->add_option("--model", o.model, "Folder holding model.json and its weight files")->required();
  cmd->add_option("images", o.images,
                  "PNG, JPEG or PGM files, or folders of them (for MNIST's models: light ink on "
                  "a dark background, as MNIST; see --invert; for a model trained on a folder "
                  "of images: read as its training read them, at its size and colours)");
  cmd->add_flag("--invert", o.invert, "The images show dark ink on a light background");
  cmd->add_option("--idx", o.idx, "An IDX images file (e.g. t10k-images-idx3-ubyte) ...");
  cmd->add_option("--index", o.index, "... and the record to classify (0-based)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", o.json, "Print one JSON array instead of text");
  return cmd;
}

namespace {

/// The files given, a folder standing for its image files (a folder of
/// class folders: all of theirs, in the index's order; else its own
/// .png/.jpg/.jpeg files, sorted).
std::vector<std::string> image_files(const std::vector<std::string>& given) {
  std::vector<std::string> out;
  for (const auto& path : given) {
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) {
      out.push_back(path);
    } else if (is_image_folder(path)) {
      const FolderIndex index = index_image_folder(path);
      for (const auto* list : {&index.train, &index.validation, &index.test}) {
        for (const auto& f : *list) {
          out.push_back((std::filesystem::path(path) / f.path).string());
        }
      }
    } else {
      std::vector<std::string> files;
      for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
        const std::string name = e.path().filename().string();
        const ImageFileKind kind = image_file_kind(name);
        if (name[0] != '.' && (kind == ImageFileKind::kDecoded || kind == ImageFileKind::kPgm)) {
          files.push_back(e.path().string());
        }
      }
      if (ec) {
        throw DataError(path + ": cannot read the folder: " + ec.message());
      }
      if (files.empty()) {
        throw DataError(path + ": the folder holds no .png, .jpg or .jpeg files");
      }
      std::sort(files.begin(), files.end());
      out.insert(out.end(), files.begin(), files.end());
    }
  }
  return out;
}

}  // namespace

int run_predict(const PredictOptions& o) {
  if (o.images.empty() == o.idx.empty()) {
    throw ConfigError("predict: give image files or --idx FILE --index N (one of the two)");
  }
  configure_cpu_threads(0);
  Model model = load_tfjs(o.model);
  const LabelSet labels = require_classifier(model, o.model);
  const auto classes = static_cast<int64_t>(labels.size());
  // A model of a folder's images reads each file as its training did; one
  // of MNIST's digits prepares it as MNIST's were.
  const std::optional<ImageSpec> spec = model_image_spec(model, o.model);
  if (spec && !o.idx.empty()) {
    throw ConfigError("--idx: " + o.model + " is a model of " +
                      shape_text(model->spec().input_shape) +
                      " images, not of MNIST's IDX records");
  }
  std::vector<std::pair<std::string, at::Tensor>> inputs;  // name, [1,C,H,W]
  for (const auto& path : image_files(o.images)) {
    if (spec) {
      const std::vector<uint8_t> bytes = read_image_file(path);
      at::Tensor hwc =
          at::empty({1, spec->height, spec->width, channels_of(spec->color_mode)}, at::kByte);
      decode_for_dataset(bytes.data(), bytes.size(), path, *spec, hwc.data_ptr<uint8_t>());
      inputs.emplace_back(path, hwc.permute({0, 3, 1, 2}).to(at::kFloat).div_(255.0));
    } else {
      inputs.emplace_back(path, load_digit_image(path, o.invert));
    }
  }

  if (!o.idx.empty()) {
    const at::Tensor images = read_idx_images(o.idx);
    if (o.index >= images.size(0)) {
      throw ConfigError(fmt::format("--index {} is out of range: {} holds {} images", o.index,
                                    o.idx, images.size(0)));
    }
    inputs.emplace_back(o.idx + "#" + std::to_string(o.index), images.narrow(0, o.index, 1));
  }
  at::Tensor batch = inputs.size() == 1 ? inputs[0].second : [&] {
    std::vector<at::Tensor> parts;
    for (const auto& in : inputs) {
      parts.push_back(in.second);
    }
    return at::cat(parts);
  }();
  const at::Tensor probs = predict_proba(model, batch, kEvalBatchSize).contiguous();

  // A model of another dataset than MNIST names its classes (e.g. "Sneaker");
  // one of some digits only (--labels) says the digit of each output.
  const OutputNames names = output_names(model->spec().metadata, classes);
  nlohmann::ordered_json doc = nlohmann::ordered_json::array();
  std::string text;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const at::Tensor p = probs[static_cast<int64_t>(i)];
    const int64_t predicted = p.argmax().item<int64_t>();
    std::vector<double> values(static_cast<size_t>(classes));
    for (int64_t c = 0; c < classes; ++c) {
      values[c] = p[c].item<double>();
    }
    // "predicted" is the output's index; "label" the dataset label it stands
    // for, when the model knows some classes only; "class_name" its name
    // (a digit for MNIST).
    nlohmann::ordered_json entry = {
        {"input", inputs[i].first}, {"predicted", predicted}, {"probabilities", values}};
    if (labels != all_labels()) {
      entry["label"] = labels[predicted];
    }
    entry["class_name"] = names.names[predicted];
    doc.push_back(entry);
    text += fmt::format("{}: {} (probability {:.4f})\n ", inputs[i].first,
                        names.with_name(predicted), values[predicted]);
    for (int64_t c = 0; c < classes; ++c) {
      text += fmt::format(" {}:{:.4f}", names.short_name(c), values[c]);
    }
    text += "\n";
  }
  // Class names come from folder names: bytes that are not UTF-8 are
  // written as U+FFFD rather than refused.
  const std::string json =
      doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  std::fputs(o.json ? json.c_str() : text.c_str(), stdout);
  return 0;
}

}  // namespace mnist::cli
