// The training job (train_job.hpp): what `mnist-train [train]` decides,
// in the order it has always done it, reported through TrainJobObserver.
#include "mnist/train_job.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include <torch/utils.h>

#include "mnist/checkpoint.hpp"
#include "mnist/csv_log.hpp"
#include "mnist/cuda_graph.hpp"
#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/history.hpp"
#include "mnist/idx.hpp"
#include "mnist/onednn.hpp"

using nlohmann::ordered_json;

namespace mnist {

namespace {

using Level = TrainJobObserver::Level;

constexpr const char* kSettingsFormat = "mnist-train-settings";

// --- The model's layers: the only places this file reads them. ---

std::string last_layer_name(const Model& model) { return model->spec().layers.back()->name; }

std::string layer_name(const Model& model, size_t index) {
  return model->spec().layers.at(index)->name;
}

std::string output_shape_text(const Model& model) {
  return shape_text(model->spec().layers.back()->output_shape);
}

// --- Settings as JSON ---

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
                                       "min_learning_rate"};

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

/// The form of the settings a checkpoint holds, compared as legacy
/// JSON: a legacy document as it is (its missing keys stay missing).
ordered_json resume_record(const ordered_json& saved, const std::string& origin) {
  if (saved.is_object() && saved.value("format", "") == kSettingsFormat) {
    return legacy_settings_json(settings_from_json(saved, origin));
  }
  return saved;
}

/// The exclusive lock on a model folder for one save (FolderLock::wait),
/// saying so while another writer holds it; none when `dir` is the
/// checkpoint folder, whose lock the job already holds.
std::optional<FolderLock> lock_model_folder(const std::string& dir,
                                            const std::string& checkpoint_dir,
                                            TrainJobObserver& observer) {
  std::error_code ec;
  if (!checkpoint_dir.empty() && std::filesystem::equivalent(dir, checkpoint_dir, ec)) {
    return std::nullopt;
  }
  return FolderLock::wait(dir, [&](const std::string& pid) {
    observer.log(Level::kInfo, fmt::format("{}: waiting for another mnist-train{} to finish "
                                           "saving there",
                                           dir, pid.empty() ? "" : " (pid " + pid + ")"));
  });
}

void require_writable(const std::string& dir, const std::string& what, Remedy remedy) {
  if (const auto problem = writable_dir_problem(dir, what)) {
    throw IoError(*problem, remedy);
  }
}

/// The data folder: settings.data_dir, else the dataset's default, which
/// for Fashion-MNIST must exist.
std::string data_dir_for(const TrainSettings& s, const TrainJobObserver& observer) {
  if (!s.data_dir.empty()) {
    return s.data_dir;
  }
  const std::string dir = default_data_dir(s.dataset);
  std::error_code ec;
  if (s.dataset == DatasetKind::kFashionMnist && !std::filesystem::is_directory(dir, ec)) {
    throw DataError(dir +
                    ": Fashion-MNIST is not installed; install Debian's dataset-fashion-mnist "
                    "(sudo scripts/setup.sh --fashion-mnist, or apt-get install "
                    "dataset-fashion-mnist) or give " +
                    observer.name_of(Setting::kDataDir) + " a folder with its four IDX files");
  }
  return dir;
}

/// The precision that runs: bf16 on a CPU without bf16 instructions would
/// be far slower than fp32, so it says so and uses fp32.
Precision resolve_precision(Precision asked,
                            const c10::Device& device,
                            TrainJobObserver& observer) {
  if (asked == Precision::kBFloat16 && device.is_cpu() && !cpu_has_bf16()) {
    observer.log(Level::kWarn, observer.name_of(Setting::kPrecision) +
                                   " bf16: this CPU has no bfloat16 instructions (AVX512_BF16 or "
                                   "AMX); training in fp32 instead");
    return Precision::kFloat32;
  }
  return asked;
}

}  // namespace

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
          {"weight_storage", storage_name(s.save_format.storage)},
          {"weight_shard_size", s.save_format.shard_bytes}};
}

TrainSettings settings_from_json(const ordered_json& json, const std::string& origin) {
  const FieldReader r(json, origin);
  if (json.value("format", "") != kSettingsFormat || json.value("version", 0) != 1) {
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
  r.named("weight_storage", s.save_format.storage, parse_storage);
  r.number("weight_shard_size", s.save_format.shard_bytes);
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
          {"weight_shard_size", s.save_format.shard_bytes}};
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
    if (key == std::string("seed") && now[key].is_null()) {
      continue;  // no seed: take the checkpoint's
    }
    const ordered_json was = saved.contains(key) ? saved[key] : defaults[key];
    if (was != now[key]) {
      throw ConfigError(
          path + " was made with " + key + " = " + was.dump() + ", this run has " + now[key].dump(),
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
  }
  return "?";
}

void TrainJobObserver::log(Level, const std::string&) {}
std::string TrainJobObserver::name_of(Setting setting) const { return setting_field(setting); }
std::string TrainJobObserver::resume_command() const { return ""; }
void TrainJobObserver::on_model(const Model&) {}
const std::atomic<bool>* TrainJobObserver::stop_flag() { return nullptr; }
void TrainJobObserver::on_batch(const BatchProgress&) {}
void TrainJobObserver::on_epoch(const EpochStats&) {}
void TrainJobObserver::on_break() {}
void TrainJobObserver::on_evaluation(const EvalResult&) {}
void TrainJobObserver::on_saved(Saved, const std::string&) {}

// --- The job ---

TrainJobResult run_train_job(const TrainSettings& s, TrainJobObserver& observer) {
  const auto job_start = std::chrono::steady_clock::now();
  const auto info = [&observer](const std::string& line) { observer.log(Level::kInfo, line); };
  const auto warn = [&observer](const std::string& line) { observer.log(Level::kWarn, line); };
  const auto name = [&observer](Setting setting) { return observer.name_of(setting); };
  // Fail fast: device, save and checkpoint folders, and the model to start
  // from are checked before any data is loaded.
  const c10::Device device = select_device(s.gpu);
  if (!s.model_save_path.empty()) {
    require_writable(s.model_save_path, "model folder", Remedy::kOtherModelFolder);
  }
  // A job owns its checkpoint folder for the whole run: a second one with
  // the same folder is refused before any work.
  std::optional<FolderLock> checkpoint_lock;
  if (!s.checkpoint_dir.empty()) {
    require_writable(s.checkpoint_dir, "checkpoint folder", Remedy::kOtherCheckpointFolder);
    checkpoint_lock.emplace(FolderLock::take(s.checkpoint_dir, "checkpoint folder"));
  }
  std::optional<Checkpoint> checkpoint;
  if (s.resume) {
    const std::string latest = latest_checkpoint(s.checkpoint_dir);
    if (latest.empty()) {
      throw ConfigError(s.checkpoint_dir + ": no complete checkpoint to resume from");
    }
    checkpoint = load_checkpoint(latest);
  }
  // Opened before any data is read, so that a bad path fails fast; a resumed
  // run keeps the rows of the epochs its checkpoint holds.
  std::unique_ptr<CsvLog> csv;
  if (!s.csv_log.empty()) {
    csv = std::make_unique<CsvLog>(s.csv_log, s.resume, checkpoint ? checkpoint->state.epoch : 1,
                                   s.validation_split > 0);
  }
  std::optional<uint64_t> checkpoint_seed;
  if (checkpoint) {
    checkpoint_seed = checkpoint_settings(checkpoint->settings, checkpoint->path).seed;
    if (!checkpoint_seed) {
      throw FormatError(checkpoint->path + ": its settings hold no seed");
    }
  }
  const uint64_t seed = checkpoint_seed ? *checkpoint_seed : s.seed ? *s.seed : random_seed();
  const LabelSet given_labels = s.labels.empty() ? LabelSet() : parse_labels(s.labels);
  Model model =
      checkpoint ? checkpoint->model
      : !s.model_load_path.empty()
          ? load_tfjs(s.model_load_path)
          : Model(mnist_node_spec(s.dropout, given_labels.empty()
                                                 ? kNumClasses
                                                 : static_cast<int64_t>(given_labels.size())));
  // The classes it learns: the labels asked for, else the ones the model knows.
  const int64_t outputs = model_outputs(model);
  const LabelSet model_labels = labels_of(model->spec().metadata, outputs);
  const LabelSet labels = given_labels.empty() ? model_labels : given_labels;
  const auto classes = static_cast<int64_t>(labels.size());
  const std::string origin = checkpoint ? checkpoint->path : s.model_load_path;
  const std::string new_head = "; add " + name(Setting::kReplaceHead) +
                               " to give it a new last Dense layer of " + std::to_string(classes) +
                               " units";
  if (s.replace_head) {
    torch::manual_seed(seed);  // the new head's weights come from the seed
    model = replace_head(model, classes);
    info(fmt::format("new head: {} has {} units, for labels {}", last_layer_name(model), classes,
                     labels_text(labels)));
  } else if (outputs < 2 || outputs > kNumClasses) {
    throw ConfigError(origin + ": the model's output is " + output_shape_text(model) +
                      "; mnist-train trains classifiers of 2 to 10 outputs, one per label" +
                      new_head);
  } else if (outputs != classes) {
    throw ConfigError(origin + ": the model has " + std::to_string(outputs) + " outputs (labels " +
                      labels_text(model_labels) + "), " + name(Setting::kLabels) + " " + s.labels +
                      " needs " + std::to_string(classes) + new_head);
  }
  if (!checkpoint) {  // the data it is trained on now
    model->set_metadata(with_labels(model->spec().metadata, s.dataset, labels));
  }
  if (const std::string problem = training_problem(model); !problem.empty()) {
    throw ConfigError(s.model_load_path + ": " + problem);
  }
  if (!s.freeze_up_to.empty()) {
    const size_t frozen = freeze_up_to(model, s.freeze_up_to);
    info(fmt::format("frozen: layers 0-{} ({} to {}); {} of {} parameters train", frozen - 1,
                     layer_name(model, 0), layer_name(model, frozen - 1),
                     count_trainable_params(model), count_params(model)));
  }
  // The saved model's format is checked now, not after the training.
  if (const auto problem = save_format_problem(model, s.save_format)) {
    throw ConfigError(*problem);
  }
  const int threads = configure_cpu_threads(s.threads);
  if (const unsigned cores = std::thread::hardware_concurrency();
      cores > 0 && static_cast<unsigned>(threads) > cores) {
    warn(fmt::format("{} {} is more than the {} cores here: training is usually slower so",
                     name(Setting::kThreads), threads, cores));
  }
  tune_allocator();

  if (checkpoint) {
    check_resumable(resume_record(checkpoint->settings, checkpoint->path), legacy_settings_json(s),
                    checkpoint->path);
  }
  TrainSettings run = s;  // as it runs: what history.json and checkpoints record
  run.seed = seed;
  run.threads = threads;
  run.data_dir = data_dir_for(s, observer);
  const std::string& data_dir = run.data_dir;
  observer.log(Level::kDebug, "settings: " + legacy_settings_json(run).dump());

  const MnistData all_data = load_mnist(data_dir, s.train_limit, s.test_limit);
  // Those labels' records only, relabelled; the validation split is taken
  // from them, as fit({validationSplit}) on a filtered dataset would.
  const MnistData data = {select_labels(all_data.train, labels),
                          select_labels(all_data.test, labels)};
  for (const auto& [set, all, what] : {std::tuple{&data.train, &all_data.train, "training"},
                                       std::tuple{&data.test, &all_data.test, "test"}}) {
    if (all->size() == 0) {
      throw DataError(data_dir + ": the " + what + " images file holds no images");
    }
    if (set->size() == 0) {
      throw DataError(data_dir + ": none of the " + std::to_string(all->size()) + " " + what +
                      " images has one of the labels " + labels_text(labels));
    }
  }
  // The images must be what the model takes, before any training work.
  try {
    check_input(model, data.train.images);
  } catch (const ConfigError& e) {
    throw ConfigError(origin + ": " + e.what());
  }
  const Split split = split_validation(data.train, s.validation_split);
  info(fmt::format(
      "data: {} training, {} validation, {} test images from {}{}{}", split.train.size(),
      split.validation.size(), data.test.size(), data_dir,
      s.dataset == DatasetKind::kMnist ? "" : std::string(" (") + dataset_name(s.dataset) + ")",
      labels == all_labels() ? "" : ", labels " + labels_text(labels)));
  if (s.batch_size > split.train.size() && split.train.size() > 0) {
    warn(
        fmt::format("{} {} is more than the {} training images: each epoch is one step of all "
                    "of them",
                    name(Setting::kBatchSize), s.batch_size, split.train.size()));
  }
  info(fmt::format("device: {}; precision {}; seed {}", describe_device(device),
                   precision_name(s.precision), seed));

  torch::manual_seed(seed);
  if (s.model_load_path.empty() && !checkpoint) {
    model->reset_tfjs();  // TF.js initialisers, drawn from the seed
  } else {
    info("starting from " + origin);
  }
  model->to(device);
  to_channels_last(model);
  Optimizer optimizer(model->parameters(), s.optimizer, s.learning_rate);
  if (const auto& saved = model->saved_optimizer; !checkpoint && saved.count > 0) {
    // includeOptimizer: go on from TF.js's optimizer state, as its fit() does
    // on a loaded model that is not compiled again.
    std::string why = s.fresh_optimizer ? name(Setting::kFreshOptimizer)
                      : s.replace_head  ? "the model has a new head"
                                        : "";
    if (why.empty()) {
      std::vector<std::string> names;
      for (const auto& p : model->named_parameters()) {
        names.push_back(p.key());
      }
      why = load_tfjs_state(optimizer, names, saved.class_name, saved.config, saved.weights);
    }
    if (why.empty()) {
      info(fmt::format("optimizer: {} goes on from the state saved with {} (step {}, {} weights)",
                       optimizer_name(s.optimizer), s.model_load_path, optimizer.iterations(),
                       saved.count));
    } else {
      warn(
          fmt::format("{}: its {} optimizer weights (saved with includeOptimizer) are not used "
                      "({}): the {} optimizer starts afresh",
                      s.model_load_path, saved.count, why, optimizer_name(s.optimizer)));
    }
  }
  TrainingCallbacks epoch_callbacks(s.callbacks);
  std::vector<at::Tensor> best_weights;  // EarlyStopping's, with restore_best_weights
  TrainState state;
  if (checkpoint) {
    if (checkpoint->optimizer != s.optimizer) {
      throw ConfigError(checkpoint->path + " was made with " + name(Setting::kOptimizer) + " " +
                            optimizer_name(checkpoint->optimizer),
                        Remedy::kSameSettings);
    }
    optimizer.load_state(checkpoint->optimizer_slots, checkpoint->optimizer_iterations);
    optimizer.set_learning_rate(checkpoint->learning_rate);
    if (!checkpoint->callbacks.is_null()) {
      epoch_callbacks.load_state(checkpoint->callbacks);
    }
    best_weights = checkpoint->best_weights;
    state = checkpoint->state;
    restore_generators(*checkpoint);
    info(fmt::format("resuming at epoch {}, batch {}", state.epoch, state.batch));
  }
  info(fmt::format("optimizer: {}, learning rate {:g}", optimizer_name(s.optimizer),
                   optimizer.learning_rate()));
  observer.on_model(model);

  TrainConfig cfg;
  cfg.epochs = s.epochs;  // in all: a resumed run continues its count; a loaded
                          // model trains this many more
  cfg.batch_size = s.batch_size;
  cfg.device = device;
  cfg.precision = resolve_precision(s.precision, device, observer);
  cfg.cuda_graphs = s.cuda_graphs;
  cfg.shuffle = s.shuffle;
  set_onednn_enabled(s.onednn);
  if (device.is_cpu()) {
    info(s.onednn ? describe_cpu_kernels(cfg.precision == Precision::kBFloat16)
                  : "convolutions: libtorch's (" + name(Setting::kNoOnednn) +
                        "); max pooling: libtorch's");
  }
  if (device.is_cuda()) {
    info(std::string("training step: ") +
         (!s.cuda_graphs ? "eager (" + name(Setting::kNoCudaGraphs) + ")"
          : GraphedStep::available()
              ? std::string("CUDA graph")
              : std::string("eager (this build has no CUDA graph support)")));
  }
  run.precision = cfg.precision;
  TrainCallbacks callbacks;
  callbacks.stop = observer.stop_flag();
  callbacks.on_batch = [&](const BatchProgress& p) { observer.on_batch(p); };
  callbacks.on_epoch = [&](const EpochStats& e) {
    observer.on_epoch(e);
    if (csv) {
      csv->write(e);
    }
  };
  callbacks.stop_training = [&](const EpochStats& e) {
    const EpochDecision d = epoch_callbacks.on_epoch_end(e, optimizer.learning_rate());
    if (d.keep_best_weights) {
      best_weights = copy_parameters(model);
    }
    if (d.save_best) {
      const auto lock = lock_model_folder(s.model_save_path, s.checkpoint_dir, observer);
      save_tfjs(model, s.model_save_path, s.save_format);
      info(fmt::format("epoch {}: {} = {:.4f}, the best so far: model saved to {}", e.epoch,
                       monitor_name(s.callbacks.monitor), epoch_callbacks.save_best_value(),
                       s.model_save_path));
      observer.on_saved(Saved::kBestModel, s.model_save_path);
    }
    if (d.new_learning_rate) {
      optimizer.set_learning_rate(*d.new_learning_rate);
      info(fmt::format("epoch {}: {}", e.epoch, d.learning_rate_reason));
    }
    if (d.stop) {
      info(d.stop_reason);
    }
    return d.stop;
  };
  std::string last_checkpoint;
  if (!s.checkpoint_dir.empty()) {
    callbacks.on_checkpoint = [&](const TrainState& at) {
      try {
        last_checkpoint = save_checkpoint(
            s.checkpoint_dir, model, optimizer, at, to_json(run), device,
            epoch_callbacks.active() ? epoch_callbacks.state() : ordered_json(), best_weights);
      } catch (const IoError& e) {
        // A run that cannot checkpoint stops rather than train on
        // unprotected; the last complete checkpoint is where to go on from.
        observer.on_break();
        const std::string good = !last_checkpoint.empty() ? last_checkpoint
                                 : checkpoint             ? checkpoint->path
                                                          : "";
        const std::string command = observer.resume_command();
        throw IoError(std::string(e.what()) + "; training stopped " +
                      (at.batch == 0 ? "after epoch " + std::to_string(at.epoch - 1)
                                     : "in epoch " + std::to_string(at.epoch)) +
                      (good.empty() ? " with no checkpoint of this run"
                                    : "; resume from " + good + " once there is room" +
                                          (command.empty() ? "" : ", with: " + command)));
      }
      observer.log(Level::kDebug, "checkpoint: " + last_checkpoint);
      observer.on_saved(Saved::kCheckpoint, last_checkpoint);
    };
  }
  TrainJobResult result;
  result.outcome = TrainOutcome::kStoppedEarly;
  if (epoch_callbacks.stopped_epoch() > 0) {
    info(
        fmt::format("the checkpoint's run had stopped early after epoch {}: nothing left to "
                    "train",
                    epoch_callbacks.stopped_epoch()));
  } else {
    result.outcome = train(model, optimizer, split.train, split.validation, cfg, state, callbacks);
  }
  result.last_checkpoint = last_checkpoint;
  if (result.outcome == TrainOutcome::kStopped) {
    observer.on_break();
    if (last_checkpoint.empty()) {
      warn("interrupted: nothing was saved (train with " + name(Setting::kCheckpointDir) +
           " DIR to be able to resume)");
    } else {
      const std::string command = observer.resume_command();
      warn("interrupted: checkpoint written to " + last_checkpoint +
           (command.empty() ? "" : "; resume with: " + command));
    }
    return result;
  }

  // Keras 3's EarlyStopping.on_train_end: the best weights come back
  // whenever restore_best_weights is set, stopped early or not.
  const bool restored = s.callbacks.restore_best_weights && !best_weights.empty();
  if (restored) {
    load_parameters(model, best_weights);
    info(fmt::format("restored the weights of epoch {} (the best {})",
                     epoch_callbacks.early_stopping_best_epoch(),
                     monitor_name(s.callbacks.monitor)));
  }
  const bool best_saved = s.callbacks.save_best && epoch_callbacks.save_best_epoch() > 0;
  if (best_saved) {
    // The folder holds the best epoch's model: evaluate that one.
    Model best = load_tfjs(s.model_save_path);
    load_parameters(model, copy_parameters(best));
    info(fmt::format("test evaluation of the best epoch's model (epoch {}, {} {:.4f})",
                     epoch_callbacks.save_best_epoch(), monitor_name(s.callbacks.monitor),
                     epoch_callbacks.save_best_value()));
  }
  result.test = evaluate(model, data.test, kEvalBatchSize, cfg.precision);
  observer.on_evaluation(result.test);
  if (!s.model_save_path.empty()) {
    // One lock for the model and its history.json.
    const auto lock = lock_model_folder(s.model_save_path, s.checkpoint_dir, observer);
    if (!best_saved) {
      save_tfjs(model, s.model_save_path, s.save_format);
    }
    ordered_json record;
    if (epoch_callbacks.active()) {
      record = epoch_callbacks.state();
      if (best_saved) {
        record["saved_epoch"] = epoch_callbacks.save_best_epoch();
      }
      record["restored_best_weights"] = restored;
    }
    const auto total = std::chrono::steady_clock::now() - job_start;
    save_history(s.model_save_path,
                 {legacy_settings_json(run), describe_device(device), state.history, result.test,
                  std::chrono::duration<double>(total).count(), record});
    info(fmt::format("saved {}/model.json, weights.bin and history.json{}", s.model_save_path,
                     best_saved ? " (the model of epoch " +
                                      std::to_string(epoch_callbacks.save_best_epoch()) + ")"
                                : ""));
    observer.on_saved(Saved::kModel, s.model_save_path);
  }
  return result;
}

}  // namespace mnist
