// A run's figures (history.json, an evaluation of the saved model, its
// parameters and stored sizes) and the self-contained HTML page of one or
// several runs (docs/report.md).
#include "mnist/report.hpp"

#include <spng.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/history.hpp"
#include "mnist/image.hpp"

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace mnist {

// ---- A model's test images -------------------------------------------------

ModelTestSet model_test_set(const Model& model,
                            const std::string& model_dir,
                            const LabelSet& labels,
                            const std::string& data_dir,
                            int64_t limit,
                            const DecodeOptions& options,
                            const std::vector<std::string>& held_out) {
  const nlohmann::ordered_json& metadata = model->spec().metadata;
  const std::optional<ImageSpec> spec = model_image_spec(model, model_dir);
  if (spec && data_dir.empty()) {
    throw ConfigError(model_dir +
                      ": a model of your own images: name the folder of images to test it on "
                      "(its test/ subfolder, else all its images)");
  }
  ModelTestSet out;
  out.data_dir = data_dir.empty() ? default_data_dir(dataset_of(metadata)) : data_dir;
  if (is_image_folder(out.data_dir)) {
    if (!spec) {
      throw ConfigError(model_dir + ": the model takes MNIST's 28x28 digits; " + out.data_dir +
                        " is a folder of images (give the folder of the images it was trained on)");
    }
    out.folder = true;
    const std::vector<std::string> names =
        class_names_of(metadata, static_cast<int64_t>(labels.size()));
    if (held_out.empty()) {
      out.data = folder_test_set(out.data_dir, names, *spec, limit, options, out.bad);
    } else {
      // folder_test_sample keeps the held-out files only (when the folder
      // has no test/ of its own); all of them unless limited.
      const int64_t count = limit > 0 ? limit : std::numeric_limits<int64_t>::max();
      out.data = folder_test_sample(out.data_dir, names, *spec, count, options, out.bad, held_out);
    }
    if (out.data.size() == 0) {
      throw DataError(out.data_dir + ": none of its images can be read" +
                      (out.bad.empty() ? std::string() : ":" + bad_images_text(out.bad)));
    }
    return out;
  }
  if (spec) {
    throw ConfigError(out.data_dir + ": not a folder of class folders of images; the model (" +
                      model_dir + ") takes " + std::to_string(spec->height) + "x" +
                      std::to_string(spec->width) + " " + color_mode_name(spec->color_mode) +
                      " images of its own classes");
  }
  const Dataset all = load_pair(out.data_dir, kTestImagesFile, kTestLabelsFile, limit);
  out.data = select_labels(all, labels);
  if (out.data.size() == 0) {
    throw DataError(out.data_dir + ": none of the " + std::to_string(all.size()) +
                    " test images has one of the model's labels (" + labels_text(labels) + ")");
  }
  return out;
}

// ---- The figures of one run ------------------------------------------------

std::vector<WrongImage> most_confidently_wrong(const at::Tensor& probabilities,
                                               const at::Tensor& labels,
                                               int64_t count) {
  const at::Tensor p = probabilities.to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor y = labels.to(at::kCPU, at::kLong).contiguous();
  if (p.dim() != 2 || y.dim() != 1 || p.size(0) != y.size(0)) {
    throw DataError("most_confidently_wrong: expected probabilities [N,K] and labels [N], got " +
                    std::to_string(p.dim()) + "-D and " + std::to_string(y.dim()) + "-D");
  }
  const int64_t n = p.size(0);
  const int64_t k = p.size(1);
  const double* prob = p.data_ptr<double>();
  const int64_t* label = y.data_ptr<int64_t>();
  std::vector<WrongImage> wrong;
  for (int64_t i = 0; i < n; ++i) {
    const double* row = prob + i * k;
    // The first of equal maxima, as argmax.
    const auto predicted = static_cast<int64_t>(std::max_element(row, row + k) - row);
    if (predicted == label[i]) {
      continue;
    }
    WrongImage w;
    w.index = i;
    w.label = label[i];
    w.predicted = predicted;
    w.confidence = row[predicted];
    w.label_prob = label[i] >= 0 && label[i] < k ? row[label[i]] : 0.0;
    wrong.push_back(std::move(w));
  }
  // stable_sort keeps equal confidences in record order.
  std::stable_sort(wrong.begin(), wrong.end(), [](const WrongImage& a, const WrongImage& b) {
    return a.confidence > b.confidence;
  });
  if (count >= 0 && static_cast<int64_t>(wrong.size()) > count) {
    wrong.resize(static_cast<size_t>(count));
  }
  return wrong;
}

std::vector<LayerParams> layer_params(const Model& model) {
  const auto& layers = model->spec().layers;
  const Graph& graph = model->graph();
  const GraphCalls calls = graph_calls(graph, layers.size());
  std::vector<LayerParams> out;
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerParams row;
    row.name = layers[i]->name;
    row.class_name = layers[i]->class_name();
    row.trainable = layers[i]->trainable;
    for (const auto& w : model->layer_weights(i)) {
      row.params += w.numel();
    }
    // summary_text's output column: "multiple" where a layer's calls differ.
    for (const size_t node : calls.nodes_of[i]) {
      const std::string shape = shape_text(model->node_output_shape(node));
      row.output_shape = row.output_shape.empty() || row.output_shape == shape ? shape : "multiple";
    }
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<StoredSize> stored_sizes(const Model& model) {
  std::vector<StoredSize> out;
  for (const WeightStorage s : {WeightStorage::kFloat32, WeightStorage::kFloat16,
                                WeightStorage::kUint16, WeightStorage::kUint8}) {
    out.push_back({s, static_cast<uint64_t>(weights_bin(model, s).size())});
  }
  return out;
}

namespace {

/// doc[key] as a number; NaN when it is missing or not a number.
double number_at(const ordered_json& doc, const char* key) {
  const auto it = doc.is_object() ? doc.find(key) : doc.end();
  return it != doc.end() && it->is_number() ? it->get<double>()
                                            : std::numeric_limits<double>::quiet_NaN();
}

/// Where a run's test images are: the report's folder when one is given;
/// else the folder of images its history.json's "data" names (and the
/// files its training held out of it), else its settings' data_dir ("":
/// the dataset's default).
struct TestSource {
  std::string data_dir;
  std::vector<std::string> held_out;
};
TestSource test_source(const ordered_json& history, const std::string& data_dir) {
  const auto data = history.find("data");
  const bool folder_record = data != history.end() && data->is_object() &&
                             data->contains("folder") && (*data)["folder"].is_string();
  TestSource out;
  if (!data_dir.empty()) {
    out.data_dir = data_dir;
  } else if (folder_record) {
    out.data_dir = (*data)["folder"].get<std::string>();
  } else if (const auto s = history.find("settings"); s != history.end() && s->is_object() &&
                                                      s->contains("data_dir") &&
                                                      (*s)["data_dir"].is_string()) {
    out.data_dir = (*s)["data_dir"].get<std::string>();
  }
  if (folder_record) {
    // The held-out files belong to the folder the training split: only when
    // the report reads that one.
    std::error_code ec;
    const std::string trained = (*data)["folder"].get<std::string>();
    const bool same = out.data_dir == trained || fs::equivalent(out.data_dir, trained, ec);
    const auto files = data->find("files");
    if (same && files != data->end() && files->is_object() && files->contains("test") &&
        (*files)["test"].is_array()) {
      for (const auto& f : (*files)["test"]) {
        if (f.is_string()) {
          out.held_out.push_back(f.get<std::string>());
        }
      }
    }
  }
  return out;
}

/// The model's softmax output for every record of `data`, [N,K] float on
/// the CPU, in batches of kEvalBatchSize with dropout off (as evaluate).
at::Tensor probabilities(Model& model, const Dataset& data) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < data.size(); start += kEvalBatchSize) {
    const int64_t len = std::min(kEvalBatchSize, data.size() - start);
    const at::Tensor logits = model->forward(data.slice(start, len).to(model->device()));
    parts.push_back(at::softmax(logits.to(at::kFloat), 1).cpu());
  }
  model->train(was_training);
  return at::cat(parts);
}

/// Record `index` of `data` as [H,W,C] bytes (float images scaled by 255).
void fill_pixels(const Dataset& data, WrongImage& w) {
  const at::Tensor idx = at::full({1}, w.index, at::kLong);
  at::Tensor image = data.gather(idx.to(data.images.device())).cpu()[0];  // [C,H,W] in [0,1]
  image = (image * 255.0).round().clamp(0, 255).to(at::kByte).permute({1, 2, 0}).contiguous();
  w.height = image.size(0);
  w.width = image.size(1);
  w.channels = image.size(2);
  w.hwc.assign(image.data_ptr<uint8_t>(), image.data_ptr<uint8_t>() + image.numel());
}

}  // namespace

void check_run_folder(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw DataError(dir + ": " + (fs::exists(dir, ec) ? "not a folder" : "no such folder") +
                    "; a run is the folder a training saved its model into");
  }
  for (const char* file : {kModelJsonFile, kHistoryFile}) {
    if (!fs::is_regular_file(fs::path(dir) / file, ec)) {
      throw DataError(dir + ": holds no " + file +
                      "; a run is the folder a training saved its model into (model.json, its "
                      "weights and history.json)");
    }
  }
}

RunReport make_run_report(const std::string& dir,
                          Model& model,
                          const LabelSet& labels,
                          const ReportSettings& options) {
  const std::string history_path = (fs::path(dir) / kHistoryFile).string();
  std::error_code ec;
  if (!fs::is_regular_file(history_path, ec)) {
    throw DataError(history_path +
                    ": not found; a report reads the history.json that training writes beside "
                    "the model it saves");
  }
  const ordered_json history = read_json_file(history_path);
  if (!history.is_object() || !history.contains("epochs") || !history["epochs"].is_array()) {
    throw FormatError(
        history_path + ": expected a training's record (an object with \"epochs\"), found " +
        std::string(history.type_name()) + (history.is_object() ? " without it" : ""));
  }
  RunReport r;
  r.dir = dir;
  r.name = model->spec().name;
  r.settings = history.contains("settings") ? history["settings"] : ordered_json::object();
  r.device = history.contains("device") && history["device"].is_string()
                 ? history["device"].get<std::string>()
                 : "";
  r.generated_by = history.contains("generatedBy") && history["generatedBy"].is_string()
                       ? history["generatedBy"].get<std::string>()
                       : "";
  r.epochs = epochs_from_json(history["epochs"]);
  r.total_seconds = number_at(history, "total_seconds");
  const ordered_json test = history.contains("test") ? history["test"] : ordered_json();
  r.history_test_loss = number_at(test, "loss");
  r.history_test_acc = number_at(test, "acc");
  const double count = number_at(test, "count");
  r.history_test_count = std::isfinite(count) ? static_cast<int64_t>(count) : 0;
  r.class_names = class_names_of(model->spec().metadata, static_cast<int64_t>(labels.size()));
  r.input_shape = model->spec().input_shape;

  const TestSource source = test_source(history, options.data_dir);
  const ModelTestSet set = model_test_set(model, dir, labels, source.data_dir, options.test_limit,
                                          options.decode, source.held_out);
  r.data_dir = set.data_dir;
  r.folder = set.folder;
  r.bad_images = static_cast<int64_t>(set.bad.size());
  r.test = evaluate(model, set.data, kEvalBatchSize);
  r.metrics = per_class_metrics(r.test.confusion);
  r.wrong = most_confidently_wrong(probabilities(model, set.data), set.data.labels, options.wrong);
  for (WrongImage& w : r.wrong) {
    fill_pixels(set.data, w);
  }
  r.layers = layer_params(model);
  r.total_params = count_params(model);
  r.trainable_params = count_trainable_params(model);
  r.sizes = stored_sizes(model);
  return r;
}

// ---- Several runs ----------------------------------------------------------

Spread mean_and_spread(const std::vector<double>& values) {
  std::vector<double> v;
  std::copy_if(values.begin(), values.end(), std::back_inserter(v),
               [](double x) { return std::isfinite(x); });
  Spread s;
  s.n = static_cast<int64_t>(v.size());
  constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
  if (v.empty()) {
    s.mean = s.std = kNan;
    return s;
  }
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  if (v.size() < 2) {
    s.std = kNan;
    return s;
  }
  double squares = 0.0;
  for (const double x : v) {
    squares += (x - s.mean) * (x - s.mean);
  }
  s.std = std::sqrt(squares / static_cast<double>(v.size() - 1));
  return s;
}

// ---- The page --------------------------------------------------------------

std::string html_escape(const std::string& text) {
  static const char* const kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(text.size());
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  for (size_t i = 0; i < text.size();) {
    const unsigned char b = byte(i);
    if (b < 0x80) {
      switch (b) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&#39;";
          break;
        default:
          if ((b < 0x20 && b != '\t' && b != '\n') || b == 0x7F) {
            out += kReplacement;
          } else {
            out += static_cast<char>(b);
          }
      }
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence (no overlong forms, no surrogates, at
    // most U+10FFFF) is copied; anything else is one U+FFFD per byte.
    const size_t len = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0;
    bool ok = len != 0 && b < 0xF5 && i + len <= text.size();
    uint32_t cp = b & (0x7F >> len);
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (byte(i + k) & 0xC0) == 0x80;
      cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    const uint32_t least = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    ok = ok && cp >= least && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(text, i, len);
      i += len;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

std::string base64(const std::string& bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  const auto at = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[i]));
  };
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    for (int s = 18; s >= 0; s -= 6) {
      out += kAlphabet[(v >> s) & 63];
    }
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = at(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string png_bytes(const std::vector<uint8_t>& hwc,
                      int64_t height,
                      int64_t width,
                      int64_t channels) {
  if ((channels != 1 && channels != 3) || height <= 0 || width <= 0 ||
      static_cast<int64_t>(hwc.size()) != height * width * channels) {
    throw DataError("png_bytes: expected " + std::to_string(height) + "x" + std::to_string(width) +
                    "x" + std::to_string(channels) + " pixels (1 or 3 channels), found " +
                    std::to_string(hwc.size()) + " bytes");
  }
  std::unique_ptr<spng_ctx, void (*)(spng_ctx*)> owner(spng_ctx_new(SPNG_CTX_ENCODER),
                                                       spng_ctx_free);
  spng_ctx* ctx = owner.get();
  spng_ihdr ihdr{};
  ihdr.width = static_cast<uint32_t>(width);
  ihdr.height = static_cast<uint32_t>(height);
  ihdr.bit_depth = 8;
  ihdr.color_type = channels == 1 ? SPNG_COLOR_TYPE_GRAYSCALE : SPNG_COLOR_TYPE_TRUECOLOR;
  int rc = ctx == nullptr ? SPNG_EMEM : spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  rc = rc != 0 ? rc : spng_set_ihdr(ctx, &ihdr);
  rc = rc != 0 ? rc
               : spng_encode_image(ctx, hwc.data(), hwc.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  size_t size = 0;
  std::unique_ptr<void, void (*)(void*)> png(
      rc != 0 ? nullptr : spng_get_png_buffer(ctx, &size, &rc), std::free);
  if (!png) {
    throw DataError(std::string("png_bytes: libspng cannot encode the image: ") +
                    spng_strerror(rc));
  }
  return std::string(static_cast<const char*>(png.get()), size);
}

namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

/// A number as the page shows it: `decimals` after the point, "–" for NaN.
std::string fixed(double x, int decimals) {
  if (!std::isfinite(x)) {
    return "\xE2\x80\x93";
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
  return buf;
}

/// A number as a data- attribute holds it: enough digits to read back the
/// same double ("NaN" for NaN), so that a test can compare it exactly.
std::string exact(double x) {
  if (!std::isfinite(x)) {
    return "NaN";
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

/// 1234567 -> "1,234,567".
std::string grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) {
    digits.insert(static_cast<size_t>(i), ",");
  }
  return (n < 0 ? "-" : "") + digits;
}

/// The colours of runs 0, 1, ... (then again): distinct on white and for
/// the common colour-vision deficiencies (Okabe and Ito's palette).
const char* run_colour(size_t run) {
  static const char* const kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                         "#E69F00", "#56B4E9", "#000000", "#F0E442"};
  return kColours[run % (sizeof kColours / sizeof kColours[0])];
}

/// A step of 1, 2 or 5 times a power of ten giving about `ticks` ticks over `range`.
double nice_step(double range, int ticks) {
  const double raw = range / ticks;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / power;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * power;
}

/// One line of a chart: a run's figure per epoch.
struct Series {
  size_t run = 0;
  std::string key;  ///< loss, val_loss, acc, val_acc
  bool dashed = false;
  std::vector<std::pair<double, double>> points;  ///< (epoch, value), finite values only
};

/// A line chart as inline SVG: the series' paths (data-run, data-series,
/// data-points: how many epochs it joins) with a dot per epoch, axes with
/// ticks, the title above.
std::string line_chart(const std::string& title, const std::vector<Series>& series) {
  constexpr double kW = 460;
  constexpr double kH = 250;
  constexpr double kLeft = 56;
  constexpr double kRight = 14;
  constexpr double kTop = 26;
  constexpr double kBottom = 40;
  double x_max = 2;
  double y_min = std::numeric_limits<double>::infinity();
  double y_max = -y_min;
  for (const Series& s : series) {
    for (const auto& [x, y] : s.points) {
      x_max = std::max(x_max, x);
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
    }
  }
  if (!std::isfinite(y_min)) {
    y_min = 0;
    y_max = 1;
  }
  if (y_max - y_min < 1e-9) {
    const double pad = std::max(std::abs(y_max) * 0.05, 0.01);
    y_min -= pad;
    y_max += pad;
  }
  const double y_step = nice_step(y_max - y_min, 5);
  y_min = std::floor(y_min / y_step) * y_step;
  y_max = std::ceil(y_max / y_step) * y_step;
  const double x_min = 1;
  const auto px = [&](double x) {
    return kLeft + (x - x_min) / (x_max - x_min) * (kW - kLeft - kRight);
  };
  const auto py = [&](double y) {
    return kTop + (y_max - y) / (y_max - y_min) * (kH - kTop - kBottom);
  };
  std::ostringstream svg;
  svg << "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW
      << "\" height=\"" << kH << "\" viewBox=\"0 0 " << kW << " " << kH << "\" role=\"img\">"
      << "<title>" << html_escape(title) << "</title>"
      << "<text x=\"" << kLeft << "\" y=\"16\" class=\"chart-title\">" << html_escape(title)
      << "</text>";
  char buf[160];
  // Horizontal grid lines and the value axis.
  for (double y = y_min; y <= y_max + y_step * 0.5; y += y_step) {
    std::snprintf(buf, sizeof buf, "%.1f", py(y));
    svg << "<line class=\"grid\" x1=\"" << kLeft << "\" x2=\"" << kW - kRight << "\" y1=\"" << buf
        << "\" y2=\"" << buf << "\"/>";
    const int decimals = y_step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(y_step) - 1e-9));
    svg << "<text class=\"tick\" text-anchor=\"end\" x=\"" << kLeft - 6 << "\" y=\"" << buf
        << "\" dy=\"4\">" << fixed(std::abs(y) < y_step * 1e-6 ? 0.0 : y, decimals) << "</text>";
  }
  // Epoch ticks: every epoch up to 20, else a nice step.
  const double x_step = x_max - x_min <= 20 ? 1 : nice_step(x_max - x_min, 10);
  for (double x = x_min; x <= x_max + 1e-9; x += x_step) {
    std::snprintf(buf, sizeof buf, "%.1f", px(x));
    svg << "<line class=\"axis\" x1=\"" << buf << "\" x2=\"" << buf << "\" y1=\"" << kH - kBottom
        << "\" y2=\"" << kH - kBottom + 4 << "\"/><text class=\"tick\" text-anchor=\"middle\" x=\""
        << buf << "\" y=\"" << kH - kBottom + 16 << "\">" << fixed(x, 0) << "</text>";
  }
  svg << "<line class=\"axis\" x1=\"" << kLeft << "\" x2=\"" << kW - kRight << "\" y1=\""
      << kH - kBottom << "\" y2=\"" << kH - kBottom << "\"/>"
      << "<text class=\"tick\" text-anchor=\"middle\" x=\"" << (kLeft + kW - kRight) / 2
      << "\" y=\"" << kH - 6 << "\">epoch</text>";
  for (const Series& s : series) {
    if (s.points.empty()) {
      continue;
    }
    std::string d;
    for (size_t i = 0; i < s.points.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%s%.2f %.2f", i == 0 ? "M" : " L", px(s.points[i].first),
                    py(s.points[i].second));
      d += buf;
    }
    svg << "<path class=\"curve\" data-run=\"" << s.run << "\" data-series=\"" << s.key
        << "\" data-points=\"" << s.points.size() << "\" d=\"" << d << "\" stroke=\""
        << run_colour(s.run) << "\"" << (s.dashed ? " stroke-dasharray=\"6 4\"" : "") << "/>";
    for (const auto& [x, y] : s.points) {
      std::snprintf(buf, sizeof buf, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\"/>",
                    px(x), py(y), s.dashed ? "#fff" : run_colour(s.run));
      svg << buf;
    }
  }
  svg << "</svg>";
  return svg.str();
}

/// `run`'s series of `key` (and its validation figure, dashed).
void add_series(std::vector<Series>& out, size_t run, const RunReport& r, bool accuracy) {
  for (const bool validation : {false, true}) {
    Series s;
    s.run = run;
    s.key = std::string(validation ? "val_" : "") + (accuracy ? "acc" : "loss");
    s.dashed = validation;
    for (const EpochStats& e : r.epochs) {
      const double y = accuracy ? (validation ? e.val_accuracy : e.accuracy)
                                : (validation ? e.val_loss : e.loss);
      if (std::isfinite(y)) {
        s.points.emplace_back(static_cast<double>(e.epoch), y);
      }
    }
    if (!s.points.empty()) {
      out.push_back(std::move(s));
    }
  }
}

/// The loss and accuracy charts of `runs` (indices into `all`), with a legend.
std::string curves(const std::vector<RunReport>& all, const std::vector<size_t>& runs) {
  std::vector<Series> loss;
  std::vector<Series> acc;
  for (const size_t i : runs) {
    add_series(loss, i, all[i], false);
    add_series(acc, i, all[i], true);
  }
  std::ostringstream out;
  out << "<div class=\"charts\">" << line_chart("Loss (categorical cross-entropy)", loss)
      << line_chart("Accuracy", acc) << "</div><p class=\"legend\">";
  for (const size_t i : runs) {
    out << "<span class=\"swatch\" style=\"background:" << run_colour(i) << "\"></span>"
        << html_escape(all[i].dir) << " &nbsp; ";
  }
  out << "solid: training, dashed: validation</p>";
  return out.str();
}

/// The run's final figures: its last epoch's, history.json's test figures,
/// the report's evaluation and the time.
struct Final {
  const char* key;
  const char* heading;
  int decimals;
};
constexpr Final kFinals[] = {
    {"epochs", "epochs", 0},
    {"loss", "loss", 4},
    {"acc", "acc", 4},
    {"val_loss", "val_loss", 4},
    {"val_acc", "val_acc", 4},
    {"test_loss", "test loss", 4},
    {"test_acc", "test acc", 4},
    {"report_acc", "report's test acc", 4},
    {"total_seconds", "seconds", 1},
};
double final_value(const RunReport& r, const std::string& key) {
  const EpochStats last =
      r.epochs.empty() ? EpochStats{0, kNan, kNan, kNan, kNan} : r.epochs.back();
  if (key == "epochs") return static_cast<double>(r.epochs.size());
  if (key == "loss") return last.loss;
  if (key == "acc") return last.accuracy;
  if (key == "val_loss") return last.val_loss;
  if (key == "val_acc") return last.val_accuracy;
  if (key == "test_loss") return r.history_test_loss;
  if (key == "test_acc") return r.history_test_acc;
  if (key == "report_acc") return r.test.accuracy;
  return r.total_seconds;
}

std::string finals_table(const std::vector<RunReport>& runs) {
  std::ostringstream out;
  out << "<table class=\"finals\"><thead><tr><th>run</th>";
  for (const Final& f : kFinals) {
    out << "<th>" << f.heading << "</th>";
  }
  out << "</tr></thead><tbody>";
  for (size_t i = 0; i < runs.size(); ++i) {
    out << "<tr class=\"run-row\" data-run=\"" << i
        << "\"><td><span class=\"swatch\" style=\"background:" << run_colour(i)
        << "\"></span><a href=\"#run-" << i << "\">" << html_escape(runs[i].dir) << "</a></td>";
    for (const Final& f : kFinals) {
      const double v = final_value(runs[i], f.key);
      out << "<td data-key=\"" << f.key << "\" data-value=\"" << exact(v) << "\">"
          << fixed(v, f.decimals) << "</td>";
    }
    out << "</tr>";
  }
  if (runs.size() >= 2) {
    for (const bool std_row : {false, true}) {
      out << "<tr class=\"" << (std_row ? "std-row" : "mean-row") << "\"><th>"
          << (std_row ? "standard deviation (sample, n&minus;1)" : "mean") << "</th>";
      for (const Final& f : kFinals) {
        std::vector<double> values;
        for (const RunReport& r : runs) {
          values.push_back(final_value(r, f.key));
        }
        const Spread s = mean_and_spread(values);
        const double v = std_row ? s.std : s.mean;
        out << "<td data-key=\"" << f.key << "\" data-value=\"" << exact(v) << "\">"
            << fixed(v, f.decimals + (std_row || f.decimals == 0 ? 1 : 0)) << "</td>";
      }
      out << "</tr>";
    }
  }
  out << "</tbody></table>";
  if (runs.size() >= 2) {
    out << "<p class=\"note\">Final figures: the last epoch's (loss, acc, val_loss, val_acc), "
           "the test set's as training measured it (test loss, test acc), this report's own "
           "evaluation of the saved model (report's test acc). Spread: the sample standard "
           "deviation, with n&minus;1 in the denominator, over the runs.</p>";
  }
  return out.str();
}

/// How a class is named in a row: its name, or "i name" when the names
/// are not its index.
std::string class_label(const RunReport& r, size_t c) {
  const std::string& name = r.class_names.at(c);
  return name == std::to_string(c) ? name : std::to_string(c) + " " + name;
}

std::string confusion_table(const RunReport& r) {
  const int64_t k = r.test.confusion.size(0);
  const at::Tensor cm = r.test.confusion.to(at::kLong).contiguous();
  const int64_t* counts = cm.data_ptr<int64_t>();
  std::ostringstream out;
  out << "<table class=\"confusion\" data-count=\"" << r.test.count
      << "\"><thead><tr><th class=\"corner\">true \\ predicted</th>";
  for (int64_t c = 0; c < k; ++c) {
    out << "<th>" << c << "</th>";
  }
  out << "</tr></thead><tbody>";
  for (int64_t t = 0; t < k; ++t) {
    int64_t row_sum = 0;
    for (int64_t p = 0; p < k; ++p) {
      row_sum += counts[t * k + p];
    }
    out << "<tr><th>" << html_escape(class_label(r, static_cast<size_t>(t))) << "</th>";
    for (int64_t p = 0; p < k; ++p) {
      const int64_t n = counts[t * k + p];
      // Shaded by the share of the true class's images: right ones blue,
      // wrong ones red.
      const double share = row_sum > 0 ? static_cast<double>(n) / static_cast<double>(row_sum) : 0;
      const double alpha = n == 0 ? 0 : 0.08 + 0.8 * (t == p ? share : std::sqrt(share));
      char style[96];
      std::snprintf(style, sizeof style, "background:rgba(%s,%.3f)",
                    t == p ? "0,114,178" : "213,94,0", alpha);
      out << "<td class=\"cm\" data-true=\"" << t << "\" data-predicted=\"" << p
          << "\" data-count=\"" << n << "\" style=\"" << style << "\">" << n << "</td>";
    }
    out << "</tr>";
  }
  out << "</tbody></table>";
  return out.str();
}

std::string scores_cell(double value, bool undefined) {
  return "<td>" + fixed(value, 4) + (undefined ? "*" : "") + "</td>";
}

std::string class_scores_table(const RunReport& r) {
  std::ostringstream out;
  bool any_undefined = false;
  out << "<table class=\"scores\"><thead><tr><th>class</th><th>precision</th><th>recall</th>"
         "<th>F1</th><th>support</th></tr></thead><tbody>";
  const auto row = [&](const std::string& name, const ClassScores& s, const char* cls) {
    any_undefined = any_undefined || s.any_undefined();
    out << "<tr class=\"" << cls << "\"><th>" << html_escape(name) << "</th>"
        << scores_cell(s.precision, s.precision_undefined)
        << scores_cell(s.recall, s.recall_undefined) << scores_cell(s.f1, s.f1_undefined) << "<td>"
        << s.support << "</td></tr>";
  };
  for (size_t c = 0; c < r.metrics.per_class.size(); ++c) {
    row(class_label(r, c), r.metrics.per_class[c], "class-row");
  }
  out << "<tr class=\"accuracy-row\"><th>accuracy</th><td></td><td></td><td>"
      << fixed(r.test.accuracy, 4) << "</td><td>" << r.test.count << "</td></tr>";
  row("macro avg", r.metrics.macro_avg, "avg-row");
  row("weighted avg", r.metrics.weighted_avg, "avg-row");
  out << "</tbody></table>";
  if (any_undefined) {
    out << "<p class=\"note\">* a score whose denominator is 0 (a class never predicted, or "
           "without images) is 0, as scikit-learn reports it.</p>";
  }
  return out.str();
}

std::string wrong_images(const RunReport& r) {
  if (r.wrong.empty()) {
    return "<p>None: every test image is classified right.</p>";
  }
  std::ostringstream out;
  out << "<div class=\"wrong-grid\">";
  for (const WrongImage& w : r.wrong) {
    // Shown at 3 times its size (at least 84 pixels wide), pixels kept sharp.
    const int64_t scale = std::max<int64_t>(1, (84 + w.width - 1) / w.width);
    out << "<figure class=\"wrong\" data-index=\"" << w.index << "\" data-label=\"" << w.label
        << "\" data-predicted=\"" << w.predicted << "\" data-confidence=\"" << exact(w.confidence)
        << "\"><img alt=\"test image " << w.index << "\" width=\"" << w.width * scale
        << "\" height=\"" << w.height * scale << "\" src=\"data:image/png;base64,"
        << base64(png_bytes(w.hwc, w.height, w.width, w.channels)) << "\"><figcaption>"
        << html_escape(r.class_names.at(static_cast<size_t>(w.predicted))) << " "
        << fixed(w.confidence * 100, 1) << "%<br><span class=\"truth\">true: "
        << html_escape(r.class_names.at(static_cast<size_t>(w.label))) << " ("
        << fixed(w.label_prob * 100, 1) << "%)</span></figcaption></figure>";
  }
  out << "</div>";
  return out.str();
}

std::string params_table(const RunReport& r) {
  std::ostringstream out;
  out << "<table class=\"params\"><thead><tr><th>layer (type)</th><th>output shape</th>"
         "<th>parameters</th></tr></thead><tbody>";
  for (const LayerParams& l : r.layers) {
    out << "<tr" << (l.trainable ? "" : " class=\"frozen\"") << "><td>" << html_escape(l.name)
        << " (" << html_escape(l.class_name) << ")" << (l.trainable ? "" : " &ndash; frozen")
        << "</td><td>" << html_escape(l.output_shape) << "</td><td data-params=\"" << l.params
        << "\">" << grouped(l.params) << "</td></tr>";
  }
  out << "<tr class=\"total-row\"><th colspan=\"2\">total (trainable "
      << grouped(r.trainable_params) << ")</th><td data-params=\"" << r.total_params << "\">"
      << grouped(r.total_params) << "</td></tr></tbody></table>";
  return out.str();
}

std::string sizes_table(const RunReport& r) {
  std::ostringstream out;
  const double float32 = r.sizes.empty() ? 0 : static_cast<double>(r.sizes.front().bytes);
  out << "<table class=\"sizes\"><thead><tr><th>weights stored as</th><th>bytes</th>"
         "<th>KiB</th><th>of float32</th></tr></thead><tbody>";
  for (const StoredSize& s : r.sizes) {
    out << "<tr data-storage=\"" << storage_name(s.storage) << "\" data-bytes=\"" << s.bytes
        << "\"><td>" << storage_name(s.storage) << "</td><td>"
        << grouped(static_cast<int64_t>(s.bytes)) << "</td><td>"
        << fixed(static_cast<double>(s.bytes) / 1024.0, 1) << "</td><td>"
        << fixed(float32 > 0 ? static_cast<double>(s.bytes) / float32 * 100 : kNan, 0)
        << "%</td></tr>";
  }
  out << "</tbody></table><p class=\"note\">The size of weights.bin as <code>mnist-train "
         "convert --quantize</code> and the TF.js converter write it (model.json adds a few "
         "KiB).</p>";
  return out.str();
}

std::string settings_details(const RunReport& r) {
  std::ostringstream out;
  out << "<details><summary>Settings (history.json)</summary><table class=\"settings\"><tbody>";
  if (r.settings.is_object()) {
    for (const auto& [key, value] : r.settings.items()) {
      const std::string text =
          value.is_string() ? value.get<std::string>()
                            : value.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
      out << "<tr><th>" << html_escape(key) << "</th><td>" << html_escape(text) << "</td></tr>";
    }
  }
  out << "</tbody></table></details>";
  return out.str();
}

std::string shape_of(const Shape& shape) {
  std::string out;
  for (const int64_t d : shape) {
    out += (out.empty() ? "" : "x") + std::to_string(d);
  }
  return out;
}

std::string run_section(const std::vector<RunReport>& runs, size_t i) {
  const RunReport& r = runs[i];
  std::ostringstream out;
  out << "<section class=\"run\" id=\"run-" << i << "\" data-run=\"" << i << "\"><h2><span "
      << "class=\"swatch\" style=\"background:" << run_colour(i) << "\"></span>"
      << html_escape(r.dir) << "</h2><p class=\"facts\">model <code>" << html_escape(r.name)
      << "</code>, input " << shape_of(r.input_shape) << ", " << r.class_names.size()
      << " classes; " << r.epochs.size() << (r.epochs.size() == 1 ? " epoch" : " epochs") << " in "
      << fixed(r.total_seconds, 1) << " s on " << html_escape(r.device)
      << (r.generated_by.empty() ? "" : " (" + html_escape(r.generated_by) + ")") << ".</p>"
      << settings_details(r) << "<h3>Learning curves</h3>" << curves(runs, {i})
      << "<h3>Evaluation</h3><p class=\"facts\">" << r.test.count << " test images of "
      << html_escape(r.data_dir) << (r.folder ? " (a folder of images)" : " (IDX files)");
  if (r.bad_images > 0) {
    out << "; " << r.bad_images << " cannot be read and are not counted";
  }
  out << ": loss <b>" << fixed(r.test.loss, 4) << "</b>, accuracy <b>" << fixed(r.test.accuracy, 4)
      << "</b>.</p><div class=\"side\"><div><h4>Confusion matrix "
      << "(rows: true class, columns: predicted)</h4>" << confusion_table(r)
      << "</div><div><h4>Per class</h4>" << class_scores_table(r) << "</div></div>"
      << "<h3>Most confidently wrong</h3><p class=\"note\">The test images the model got wrong "
      << "with the highest probability on its answer: the predicted class and its probability, "
      << "then the true class and the probability the model gave it.</p>" << wrong_images(r)
      << "<h3>Parameters</h3>" << params_table(r) << "<h3>Size</h3>" << sizes_table(r)
      << "</section>";
  return out.str();
}

constexpr const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 4px;border-top:1px solid #ccc;padding-top:16px}
h3{font-size:15px;margin:20px 0 6px}h4{font-size:13px;margin:8px 0 4px;font-weight:600}
table{border-collapse:collapse;margin:4px 0}th,td{padding:2px 8px;text-align:right;border-bottom:1px solid #eee}
th:first-child,td:first-child{text-align:left}thead th{border-bottom:1px solid #999;font-weight:600}
table.confusion td,table.confusion th{text-align:center;min-width:28px;padding:2px 4px;border:1px solid #eee}
table.settings th,table.settings td{text-align:left;font-size:12px}
.mean-row,.std-row{background:#f4f4f4}.total-row{border-top:1px solid #999}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart .grid{stroke:#eee}.chart .axis{stroke:#999}
.chart .tick{font-size:11px;fill:#555}.chart .chart-title{font-size:13px;font-weight:600;fill:#222}
.chart path{fill:none;stroke-width:2}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.legend,.note,.facts{color:#444;font-size:13px}.note{font-size:12px;color:#666}
.side{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.wrong-grid{display:flex;flex-wrap:wrap;gap:10px}
figure.wrong{margin:0;text-align:center;font-size:12px;width:96px}
figure.wrong img{image-rendering:pixelated;border:1px solid #ccc;display:block;margin:0 auto 2px}
.truth{color:#777}code{font-size:12px}
)";

}  // namespace

std::string report_html(const std::vector<RunReport>& runs) {
  if (runs.empty()) {
    throw ConfigError("report: no runs to report");
  }
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      << "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
      // No request may leave the page: everything is inline.
      << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
         "style-src 'unsafe-inline'; img-src data:\">"
      << "<title>mnist-train report: "
      << html_escape(runs.size() == 1 ? runs[0].dir : std::to_string(runs.size()) + " runs")
      << "</title><style>" << kStyle << "</style></head><body><h1>mnist-train report</h1>"
      << "<p class=\"facts\">" << runs.size() << (runs.size() == 1 ? " run" : " runs") << " of "
      << runs[0].class_names.size() << " classes, made " << html_escape(iso_time_stamp()) << " by "
      << html_escape(generated_by()) << ".</p>";
  out << "<h2 id=\"runs\">" << (runs.size() == 1 ? "Final figures" : "Runs compared") << "</h2>"
      << finals_table(runs);
  if (runs.size() >= 2) {
    std::vector<size_t> all(runs.size());
    std::iota(all.begin(), all.end(), size_t{0});
    out << "<h3>Learning curves, overlaid</h3>" << curves(runs, all);
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    out << run_section(runs, i);
  }
  out << "</body></html>\n";
  return out.str();
}

}  // namespace mnist
