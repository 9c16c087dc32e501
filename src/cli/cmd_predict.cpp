// `mnist-train predict`: the class and ten probabilities for each image
// (PNG/PGM, prepared like MNIST) or for a record of an IDX file.
#include <cstdio>
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
#include "mnist/tfjs_io.hpp"

namespace mnist::cli {

CLI::App* add_predict_command(CLI::App& app, PredictOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "predict",
      "Classify digit images (PNG, JPEG or PGM, any size: made grayscale, cropped, "
      "scaled and centred like MNIST) or a record of an IDX file");
  cmd->add_option("--model", o.model, "Folder holding model.json and its weight files")->required();
  cmd->add_option("images", o.images,
                  "PNG, JPEG or PGM files (light ink on a dark background, as "
                  "MNIST; see --invert)");
  cmd->add_flag("--invert", o.invert, "The images show dark ink on a light background");
  cmd->add_option("--idx", o.idx, "An IDX images file (e.g. t10k-images-idx3-ubyte) ...");
  cmd->add_option("--index", o.index, "... and the record to classify (0-based)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", o.json, "Print one JSON array instead of text");
  return cmd;
}

int run_predict(const PredictOptions& o) {
  if (o.images.empty() == o.idx.empty()) {
    throw ConfigError("predict: give image files or --idx FILE --index N (one of the two)");
  }
  configure_cpu_threads(0);
  // Images first: a file that cannot be read (a decompression bomb, a GIF)
  // is refused before any time goes into the model.
  std::vector<std::pair<std::string, at::Tensor>> inputs;  // name, [1,1,28,28]
  for (const auto& path : o.images) {
    inputs.emplace_back(path, load_digit_image(path, o.invert));
  }
  Model model = load_tfjs(o.model);
  const LabelSet labels = require_classifier(model, o.model);
  const auto classes = static_cast<int64_t>(labels.size());

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
    // for, when the model knows some classes only.
    nlohmann::ordered_json entry = {
        {"input", inputs[i].first}, {"predicted", predicted}, {"probabilities", values}};
    if (labels != all_labels()) {
      entry["label"] = labels[predicted];
    }
    if (names.named) {
      entry["class_name"] = names.names[predicted];
    }
    doc.push_back(entry);
    text += fmt::format("{}: {} (probability {:.4f})\n ", inputs[i].first,
                        names.with_name(predicted), values[predicted]);
    for (int64_t c = 0; c < classes; ++c) {
      text += fmt::format(" {}:{:.4f}", names.short_name(c), values[c]);
    }
    text += "\n";
  }
  std::fputs(o.json ? (doc.dump() + "\n").c_str() : text.c_str(), stdout);
  return 0;
}

}  // namespace mnist::cli
