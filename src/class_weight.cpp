// Class weights (class_weight.hpp): balanced weights, the weights file, and
// the weighted loss TF.js's fit computes with them.
#include "mnist/class_weight.hpp"

#include <cmath>
#include <filesystem>
#include <optional>

#include <spdlog/fmt/fmt.h>

#include "mnist/error.hpp"
#include "mnist/evaluate.hpp"
#include "mnist/fs_util.hpp"

using nlohmann::ordered_json;

namespace mnist {

namespace {

/// `key` as a class index below `classes`: digits only, no sign, no leading
/// zero (so "01" is not the index 1, and no two index texts name one class).
std::optional<int64_t> index_of(const std::string& key, int64_t classes) {
  if (key.empty() || key.size() > 3 || key.find_first_not_of("0123456789") != std::string::npos ||
      (key.size() > 1 && key[0] == '0')) {
    return std::nullopt;
  }
  const int64_t i = std::stoll(key);
  return i < classes ? std::optional(i) : std::nullopt;
}

std::optional<int64_t> name_of(const std::string& key, const std::vector<std::string>& names) {
  for (size_t c = 0; c < names.size(); ++c) {
    if (names[c] == key) {
      return static_cast<int64_t>(c);
    }
  }
  return std::nullopt;
}

}  // namespace

ClassWeights balanced_class_weights(const at::Tensor& labels, int64_t classes) {
  if (classes < 1) {
    throw ConfigError("balanced class weights need at least one class");
  }
  const at::Tensor y = labels.to(at::kCPU, at::kLong).reshape({-1});
  const int64_t n = y.size(0);
  if (n > 0 && (y.min().item<int64_t>() < 0 || y.max().item<int64_t>() >= classes)) {
    throw ConfigError(fmt::format("balanced class weights: a label is outside 0..{}", classes - 1));
  }
  const at::Tensor counts = at::bincount(y, /*weights=*/{}, /*minlength=*/classes);
  ClassWeights weights(static_cast<size_t>(classes));
  for (int64_t c = 0; c < classes; ++c) {
    const int64_t count = counts[c].item<int64_t>();
    if (count == 0) {
      throw DataError(
          fmt::format("class {} has no image among the {} training images: balanced class weights, "
                      "n / (classes * count), need every class",
                      c, n));
    }
    // scikit-learn's expression, in double: n_samples / (n_classes * count).
    weights[static_cast<size_t>(c)] =
        static_cast<double>(n) / (static_cast<double>(classes) * static_cast<double>(count));
  }
  return weights;
}

ClassWeights class_weights_from_json(const ordered_json& json,
                                     const std::vector<std::string>& class_names,
                                     const std::string& origin) {
  const auto classes = static_cast<int64_t>(class_names.size());
  const std::string expected =
      R"(class weights are a JSON object {"class index or name": weight, ...})";
  if (!json.is_object()) {
    throw ConfigError(origin + ": " + expected + ", not " + std::string(json.type_name()));
  }
  std::vector<std::optional<double>> given(class_names.size());
  std::vector<std::string> given_as(class_names.size());
  bool any_positive = false;
  for (const auto& [key, value] : json.items()) {
    const std::optional<int64_t> as_index = index_of(key, classes);
    const std::optional<int64_t> as_name = name_of(key, class_names);
    if (!as_index && !as_name) {
      std::string known;
      for (int64_t c = 0; c < classes; ++c) {
        known += (c ? ", " : "") + std::to_string(c) + " (" + class_names[c] + ")";
      }
      throw ConfigError(
          fmt::format("{}: \"{}\" is neither a class index nor a class name of "
                      "this model; its classes are {}",
                      origin, key, known));
    }
    if (as_index && as_name && *as_index != *as_name) {
      throw ConfigError(fmt::format(
          "{}: \"{}\" is ambiguous: the index of class {} (\"{}\") and the name of class {}; "
          "key every class by its index, or every class by its name",
          origin, key, *as_index, class_names[*as_index], *as_name));
    }
    const auto c = static_cast<size_t>(as_index ? *as_index : *as_name);
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0) {
      throw ConfigError(fmt::format("{}: the weight of \"{}\" must be a finite number >= 0, not {}",
                                    origin, key, value.dump()));
    }
    if (given[c]) {
      throw ConfigError(fmt::format("{}: class {} (\"{}\") has two weights, as \"{}\" and \"{}\"",
                                    origin, c, class_names[c], given_as[c], key));
    }
    given[c] = value.get<double>();
    given_as[c] = key;
    any_positive = any_positive || *given[c] > 0;
  }
  std::string missing;
  for (size_t c = 0; c < given.size(); ++c) {
    if (!given[c]) {
      missing += (missing.empty() ? "" : ", ") + std::to_string(c) + " (" + class_names[c] + ")";
    }
  }
  if (!missing.empty()) {
    throw ConfigError(origin + ": no weight for class " + missing +
                      "; every class of the model needs one (TF.js's fit refuses a class of the "
                      "training data without a weight)");
  }
  if (!any_positive) {
    throw ConfigError(origin + ": every class weight is 0, so nothing would be learnt");
  }
  ClassWeights weights;
  for (const auto& w : given) {
    weights.push_back(*w);
  }
  return weights;
}

ClassWeights read_class_weights(const std::string& path,
                                const std::vector<std::string>& class_names) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw ConfigError(path +
                      ": no such file; class weights are \"balanced\" or a JSON file of "
                      R"({"class index or name": weight, ...})");
  }
  return class_weights_from_json(read_json_file(path), class_names, path);
}

at::Tensor weighted_categorical_crossentropy(const at::Tensor& logits,
                                             const at::Tensor& labels,
                                             const at::Tensor& weights) {
  // computeWeightedLoss multiplies the per-image losses, then the train
  // function takes their plain mean.
  return (tfjs_categorical_crossentropy(logits, labels, at::Reduction::None) *
          weights.index_select(0, labels))
      .mean();
}

std::string class_weights_text(const ClassWeights& weights,
                               const std::vector<std::string>& class_names) {
  std::string text;
  for (size_t c = 0; c < weights.size(); ++c) {
    const std::string name = c < class_names.size() ? class_names[c] : std::to_string(c);
    text +=
        fmt::format("{}{}: {:.4g}", c ? ", " : "",
                    name == std::to_string(c) ? name : std::to_string(c) + " " + name, weights[c]);
  }
  return text;
}

ordered_json class_weights_json(const ClassWeights& weights) {
  ordered_json json = ordered_json::object();
  for (size_t c = 0; c < weights.size(); ++c) {
    json[std::to_string(c)] = weights[c];
  }
  return json;
}

}  // namespace mnist
