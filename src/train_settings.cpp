// TrainSettings as JSON (train_job.hpp): the settings' own form, which
// checkpoints store; the command line's option keys, which history.json and
// older checkpoints hold; what a resumed run must keep (kResumeKeys,
// check_resumable); a random seed; the settings' field names.
#include "mnist/train_job.hpp"

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <utility>

#include "mnist/error.hpp"
#include "train_settings.hpp"

using nlohmann::ordered_json;

namespace mnist {

namespace {

constexpr const char* kSettingsFormat = "mnist-train-settings";

/// Settings that must not change between a run and its resumption (a
/// checkpoint made before a key existed holds that key's default).
constexpr const char* kResumeKeys[] = {"batch_size",
                                       "validation_split",
                                       "train_limit",
                                       "seed",
                                       "dataset",
                                       "labels",
                                       "dropout",
                                       "shuffle",
                                       "optimizer",
                                       "learning_rate",
                                       "early_stopping_patience",
                                       "monitor",
                                       "min_delta",
                                       "restore_best_weights",
                                       "save_best",
                                       "reduce_lr_patience",
                                       "reduce_lr_factor",
                                       "reduce_lr_min_delta",
                                       "min_learning_rate",
                                       "image_height",
                                       "image_width",
                                       "color_mode",
                                       "interpolation",
                                       "crop_to_aspect_ratio",
                                       "test_split",
                                       "class_weight",
                                       "augment",
                                       "lr_schedule"};

/// Reads a JSON object's fields into settings, with FormatErrors naming
/// `origin` and the key.
class FieldReader {
 public:
  FieldReader(const ordered_json& json, std::string origin)
      : json_(json), origin_(std::move(origin)) {
    if (!json_.is_object()) {
      throw FormatError(origin_ + ": the settings are not a JSON object");
    }
  }

  template <typename T>
  void number(const char* key, T& value) const {
    if (const ordered_json* v = find(key)) {
      if (!v->is_number() || (std::is_integral_v<T> && !v->is_number_integer()) ||
          (std::is_unsigned_v<T> && !non_negative_integer(*v))) {
        throw bad(key, "a number");
      }
      value = v->get<T>();
    }
  }

  void boolean(const char* key, bool& value) const {
    if (const ordered_json* v = find(key)) {
      if (!v->is_boolean()) {
        throw bad(key, "true or false");
      }
      value = v->get<bool>();
    }
  }

  void text(const char* key, std::string& value) const {
    if (const ordered_json* v = find(key)) {
      if (!v->is_string()) {
        throw bad(key, "a string");
      }
      value = v->get<std::string>();
    }
  }

  void numbers(const char* key, std::vector<double>& value) const {
    if (const ordered_json* v = find(key)) {
      if (!v->is_array() ||
          !std::all_of(v->begin(), v->end(), [](const auto& x) { return x.is_number(); })) {
        throw bad(key, "an array of numbers");
      }
      value = v->get<std::vector<double>>();
    }
  }

  void seed(const char* key, std::optional<uint64_t>& value) const {
    if (const ordered_json* v = find(key); v != nullptr && !v->is_null()) {
      if (!non_negative_integer(*v)) {
        throw bad(key, "a seed (an integer of at least 0) or null");
      }
      value = v->get<uint64_t>();
    }
  }

  /// A name that `parse` turns into `value`.
  template <typename T, typename Parse>
  void named(const char* key, T& value, Parse parse) const {
    std::string name;
    text(key, name);
    if (find(key) != nullptr) {
      const auto parsed = parse(name);
      if (!parsed) {
        throw bad(key, "a known name");
      }
      value = *parsed;
    }
  }

 private:
  static bool non_negative_integer(const ordered_json& v) {
    return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  }

  const ordered_json* find(const char* key) const {
    const auto it = json_.find(key);
    return it == json_.end() ? nullptr : &*it;
  }

  FormatError bad(const char* key, const std::string& expected) const {
    return FormatError(origin_ + ": settings field \"" + key + "\" must be " + expected + ", not " +
                       json_.at(key).dump());
  }

  const ordered_json& json_;
  std::string origin_;
};

std::optional<Precision> parse_precision(const std::string& name) {
  if (name == "fp32") {
    return Precision::kFloat32;
  }
  if (name == "bf16") {
    return Precision::kBFloat16;
  }
  return std::nullopt;
}

std::optional<WeightStorage> parse_legacy_quantize(const std::string& name) {
  return name.empty() ? std::optional(WeightStorage::kFloat32) : parse_storage(name);
}

/// The learning-rate schedule as one object, in both forms.
ordered_json lr_schedule_json(const LrSchedule& l) {
  return {{"kind", lr_schedule_name(l.kind)},
          {"warmup_epochs", l.warmup_epochs},
          {"decay_rate", l.decay_rate},
          {"decay_epochs", l.decay_epochs},
          {"staircase", l.staircase},
          {"boundaries", l.boundaries},
          {"values", l.values},
          {"alpha", l.alpha},
          {"pct_start", l.pct_start},
          {"div", l.div},
          {"div_final", l.div_final}};
}

/// Reads json's "lr_schedule" object, if there is one, into `l`.
void read_lr_schedule(const ordered_json& json, const std::string& origin, LrSchedule& l) {
  if (!json.contains("lr_schedule")) {
    return;
  }
  const FieldReader r(json["lr_schedule"], origin + " (lr_schedule)");
  r.named("kind", l.kind, parse_lr_schedule);
  r.number("warmup_epochs", l.warmup_epochs);
  r.number("decay_rate", l.decay_rate);
  r.number("decay_epochs", l.decay_epochs);
  r.boolean("staircase", l.staircase);
  r.numbers("boundaries", l.boundaries);
  r.numbers("values", l.values);
  r.number("alpha", l.alpha);
  r.number("pct_start", l.pct_start);
  r.number("div", l.div);
  r.number("div_final", l.div_final);
}

}  // namespace

namespace {

/// Whether `json` is an object whose `key` is `want` (of its type: a
/// "format" of another type is simply not ours).
bool field_is(const ordered_json& json, const char* key, const ordered_json& want) {
  if (!json.is_object()) {
    return false;
  }
  const auto it = json.find(key);
  const bool comparable =
      (it != json.end()) && ((it->is_string() && want.is_string()) ||
                             (it->is_number_integer() && want.is_number_integer()));
  return comparable && *it == want;
}

}  // namespace

namespace detail {

ordered_json resume_record(const ordered_json& saved, const std::string& origin) {
  if (field_is(saved, "format", kSettingsFormat)) {
    return legacy_settings_json(settings_from_json(saved, origin));
  }
  return saved;
}

}  // namespace detail

// --- TrainSettings <-> JSON ---

ordered_json to_json(const TrainSettings& s) {
  const CallbackConfig& c = s.callbacks;
  return {{"format", kSettingsFormat},
          {"version", 1},
          {"epochs", s.epochs},
          {"batch_size", s.batch_size},
          {"validation_split", s.validation_split},
          {"seed", s.seed ? ordered_json(*s.seed) : ordered_json(nullptr)},
          {"threads", s.threads},
          {"train_limit", s.train_limit},
          {"test_limit", s.test_limit},
          {"model_save_path", s.model_save_path},
          {"gpu", s.gpu},
          {"cuda_graphs", s.cuda_graphs},
          {"onednn", s.onednn},
          {"data_dir", s.data_dir},
          {"model_load_path", s.model_load_path},
          {"freeze_up_to", s.freeze_up_to},
          {"labels", s.labels},
          {"replace_head", s.replace_head},
          {"fresh_optimizer", s.fresh_optimizer},
          {"checkpoint_dir", s.checkpoint_dir},
          {"resume", s.resume},
          {"precision", precision_name(s.precision)},
          {"dataset", dataset_name(s.dataset)},
          {"dropout", s.dropout},
          {"shuffle", s.shuffle},
          {"optimizer", optimizer_name(s.optimizer)},
          {"learning_rate", s.learning_rate},
          {"callbacks",
           {{"monitor", monitor_name(c.monitor)},
            {"early_stopping_patience", c.early_stopping_patience},
            {"min_delta", c.min_delta},
            {"restore_best_weights", c.restore_best_weights},
            {"save_best", c.save_best},
            {"reduce_lr_patience", c.reduce_lr_patience},
            {"reduce_lr_factor", c.reduce_lr_factor},
            {"reduce_lr_min_delta", c.reduce_lr_min_delta},
            {"min_learning_rate", c.min_learning_rate}}},
          {"csv_log", s.csv_log},
          {"class_weight", s.class_weight},
          {"weight_storage", storage_name(s.save_format.storage)},
          {"weight_shard_size", s.save_format.shard_bytes},
          {"image_height", s.image_height},
          {"image_width", s.image_width},
          {"color_mode", s.color_mode},
          {"interpolation", s.interpolation},
          {"crop_to_aspect_ratio", s.crop_to_aspect_ratio},
          {"test_split", s.test_split},
          {"cache_dir", s.cache_dir},
          {"skip_bad_images", s.skip_bad_images},
          {"augment", s.augment},
          {"augment_threads", s.augment_threads},
          {"tensorboard_dir", s.tensorboard_dir},
          {"tensorboard_update_freq", s.tensorboard_update_freq},
          {"lr_schedule", lr_schedule_json(s.lr_schedule)}};
}

TrainSettings settings_from_json(const ordered_json& json, const std::string& origin) {
  const FieldReader r(json, origin);
  if (!field_is(json, "format", kSettingsFormat) || !field_is(json, "version", 1)) {
    throw FormatError(origin + ": not mnist-train's settings (version 1)");
  }
  TrainSettings s;
  r.number("epochs", s.epochs);
  r.number("batch_size", s.batch_size);
  r.number("validation_split", s.validation_split);
  r.seed("seed", s.seed);
  r.number("threads", s.threads);
  r.number("train_limit", s.train_limit);
  r.number("test_limit", s.test_limit);
  r.text("model_save_path", s.model_save_path);
  r.boolean("gpu", s.gpu);
  r.boolean("cuda_graphs", s.cuda_graphs);
  r.boolean("onednn", s.onednn);
  r.text("data_dir", s.data_dir);
  r.text("model_load_path", s.model_load_path);
  r.text("freeze_up_to", s.freeze_up_to);
  r.text("labels", s.labels);
  r.boolean("replace_head", s.replace_head);
  r.boolean("fresh_optimizer", s.fresh_optimizer);
  r.text("checkpoint_dir", s.checkpoint_dir);
  r.boolean("resume", s.resume);
  r.named("precision", s.precision, parse_precision);
  r.named("dataset", s.dataset, parse_dataset);
  r.boolean("dropout", s.dropout);
  r.boolean("shuffle", s.shuffle);
  r.named("optimizer", s.optimizer, parse_optimizer);
  r.number("learning_rate", s.learning_rate);
  if (json.contains("callbacks")) {
    const FieldReader cb(json["callbacks"], origin + " (callbacks)");
    CallbackConfig& c = s.callbacks;
    cb.named("monitor", c.monitor, parse_monitor);
    cb.number("early_stopping_patience", c.early_stopping_patience);
    cb.number("min_delta", c.min_delta);
    cb.boolean("restore_best_weights", c.restore_best_weights);
    cb.boolean("save_best", c.save_best);
    cb.number("reduce_lr_patience", c.reduce_lr_patience);
    cb.number("reduce_lr_factor", c.reduce_lr_factor);
    cb.number("reduce_lr_min_delta", c.reduce_lr_min_delta);
    cb.number("min_learning_rate", c.min_learning_rate);
  }
  r.text("csv_log", s.csv_log);
  r.text("class_weight", s.class_weight);
  r.named("weight_storage", s.save_format.storage, parse_storage);
  r.number("weight_shard_size", s.save_format.shard_bytes);
  r.number("image_height", s.image_height);
  r.number("image_width", s.image_width);
  r.text("color_mode", s.color_mode);
  r.text("interpolation", s.interpolation);
  r.boolean("crop_to_aspect_ratio", s.crop_to_aspect_ratio);
  r.number("test_split", s.test_split);
  r.text("cache_dir", s.cache_dir);
  r.boolean("skip_bad_images", s.skip_bad_images);
  r.text("augment", s.augment);
  r.number("augment_threads", s.augment_threads);
  r.text("tensorboard_dir", s.tensorboard_dir);
  r.text("tensorboard_update_freq", s.tensorboard_update_freq);
  read_lr_schedule(json, origin, s.lr_schedule);
  return s;
}

ordered_json legacy_settings_json(const TrainSettings& s) {
  const CallbackConfig& c = s.callbacks;
  const WeightStorage storage = s.save_format.storage;
  return {{"epochs", s.epochs},
          {"batch_size", s.batch_size},
          {"validation_split", s.validation_split},
          {"seed", s.seed ? ordered_json(*s.seed) : ordered_json(nullptr)},
          {"threads", s.threads},
          {"train_limit", s.train_limit},
          {"test_limit", s.test_limit},
          {"model_save_path", s.model_save_path},
          {"gpu", s.gpu},
          {"cuda_graphs", s.cuda_graphs},
          {"onednn_conv", s.onednn},  // the key's name before it covered pooling
          {"data_dir", s.data_dir},
          {"model_load_path", s.model_load_path},
          {"freeze_up_to", s.freeze_up_to},
          {"labels", s.labels},
          {"replace_head", s.replace_head},
          {"fresh_optimizer", s.fresh_optimizer},
          {"checkpoint_dir", s.checkpoint_dir},
          {"precision", precision_name(s.precision)},
          {"dataset", dataset_name(s.dataset)},
          {"dropout", s.dropout},
          {"shuffle", s.shuffle},
          {"optimizer", optimizer_name(s.optimizer)},
          {"learning_rate", s.learning_rate},
          {"early_stopping_patience", c.early_stopping_patience},
          {"monitor", monitor_name(c.monitor)},
          {"min_delta", c.min_delta},
          {"restore_best_weights", c.restore_best_weights},
          {"save_best", c.save_best},
          {"reduce_lr_patience", c.reduce_lr_patience},
          {"reduce_lr_factor", c.reduce_lr_factor},
          {"reduce_lr_min_delta", c.reduce_lr_min_delta},
          {"min_learning_rate", c.min_learning_rate},
          {"csv_log", s.csv_log},
          {"quantize", storage == WeightStorage::kFloat32 ? "" : storage_name(storage)},
          {"weight_shard_size", s.save_format.shard_bytes},
          {"image_height", s.image_height},
          {"image_width", s.image_width},
          {"color_mode", s.color_mode},
          {"interpolation", s.interpolation},
          {"crop_to_aspect_ratio", s.crop_to_aspect_ratio},
          {"test_split", s.test_split},
          {"cache_dir", s.cache_dir},
          {"skip_bad_images", s.skip_bad_images},
          {"class_weight", s.class_weight},
          {"augment", s.augment},
          {"augment_threads", s.augment_threads},
          {"tensorboard_dir", s.tensorboard_dir},
          {"tensorboard_update_freq", s.tensorboard_update_freq},
          {"lr_schedule", lr_schedule_json(s.lr_schedule)}};
}

TrainSettings settings_from_legacy_json(const ordered_json& json, const std::string& origin) {
  const FieldReader r(json, origin);
  TrainSettings s;
  r.number("epochs", s.epochs);
  r.number("batch_size", s.batch_size);
  r.number("validation_split", s.validation_split);
  r.seed("seed", s.seed);
  r.number("threads", s.threads);
  r.number("train_limit", s.train_limit);
  r.number("test_limit", s.test_limit);
  r.text("model_save_path", s.model_save_path);
  r.boolean("gpu", s.gpu);
  r.boolean("cuda_graphs", s.cuda_graphs);
  r.boolean("onednn_conv", s.onednn);
  r.text("data_dir", s.data_dir);
  r.text("model_load_path", s.model_load_path);
  r.text("freeze_up_to", s.freeze_up_to);
  r.text("labels", s.labels);
  r.boolean("replace_head", s.replace_head);
  r.boolean("fresh_optimizer", s.fresh_optimizer);
  r.text("checkpoint_dir", s.checkpoint_dir);
  r.named("precision", s.precision, parse_precision);
  r.named("dataset", s.dataset, parse_dataset);
  r.boolean("dropout", s.dropout);
  r.boolean("shuffle", s.shuffle);
  r.named("optimizer", s.optimizer, parse_optimizer);
  r.number("learning_rate", s.learning_rate);
  CallbackConfig& c = s.callbacks;
  r.number("early_stopping_patience", c.early_stopping_patience);
  r.named("monitor", c.monitor, parse_monitor);
  r.number("min_delta", c.min_delta);
  r.boolean("restore_best_weights", c.restore_best_weights);
  r.boolean("save_best", c.save_best);
  r.number("reduce_lr_patience", c.reduce_lr_patience);
  r.number("reduce_lr_factor", c.reduce_lr_factor);
  r.number("reduce_lr_min_delta", c.reduce_lr_min_delta);
  r.number("min_learning_rate", c.min_learning_rate);
  r.text("csv_log", s.csv_log);
  r.named("quantize", s.save_format.storage, parse_legacy_quantize);
  r.number("weight_shard_size", s.save_format.shard_bytes);
  r.number("image_height", s.image_height);
  r.number("image_width", s.image_width);
  r.text("color_mode", s.color_mode);
  r.text("interpolation", s.interpolation);
  r.boolean("crop_to_aspect_ratio", s.crop_to_aspect_ratio);
  r.number("test_split", s.test_split);
  r.text("cache_dir", s.cache_dir);
  r.boolean("skip_bad_images", s.skip_bad_images);
  r.text("class_weight", s.class_weight);
  r.text("augment", s.augment);
  r.number("augment_threads", s.augment_threads);
  r.text("tensorboard_dir", s.tensorboard_dir);
  r.text("tensorboard_update_freq", s.tensorboard_update_freq);
  read_lr_schedule(json, origin, s.lr_schedule);
  return s;
}

TrainSettings checkpoint_settings(const ordered_json& json, const std::string& origin) {
  if (json.is_object() && json.contains("format")) {
    return settings_from_json(json, origin);
  }
  return settings_from_legacy_json(json, origin);
}

void check_resumable(const ordered_json& saved, const ordered_json& now, const std::string& path) {
  const ordered_json defaults = legacy_settings_json(TrainSettings{});
  for (const char* key : kResumeKeys) {
    const ordered_json is = now.contains(key) ? now[key] : defaults[key];
    if (key == std::string("seed") && is.is_null()) {
      continue;  // no seed: take the checkpoint's
    }
    const ordered_json was = saved.contains(key) ? saved[key] : defaults[key];
    if (was != is) {
      throw ConfigError(
          path + " was made with " + key + " = " + was.dump() + ", this run has " + is.dump(),
          Remedy::kSameSettings);
    }
  }
}

uint64_t random_seed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32 | rd()) & ((uint64_t{1} << 53) - 1);  // exact in JSON
}

std::string setting_field(Setting setting) {
  switch (setting) {
    case Setting::kBatchSize:
      return "batch_size";
    case Setting::kThreads:
      return "threads";
    case Setting::kLabels:
      return "labels";
    case Setting::kReplaceHead:
      return "replace_head";
    case Setting::kFreshOptimizer:
      return "fresh_optimizer";
    case Setting::kCheckpointDir:
      return "checkpoint_dir";
    case Setting::kOptimizer:
      return "optimizer";
    case Setting::kPrecision:
      return "precision";
    case Setting::kDataDir:
      return "data_dir";
    case Setting::kNoCudaGraphs:
      return "cuda_graphs off";
    case Setting::kNoOnednn:
      return "onednn off";
    case Setting::kImageSize:
      return "image_height, image_width";
    case Setting::kColorMode:
      return "color_mode";
    case Setting::kTestSplit:
      return "test_split";
    case Setting::kValidationSplit:
      return "validation_split";
  }
  return "?";
}

}  // namespace mnist
