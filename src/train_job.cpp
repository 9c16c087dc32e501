// The training job (train_job.hpp): what `mnist-train [train]` decides,
// in the order it has always done it, reported through TrainJobObserver.
#include "mnist/train_job.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include <ATen/Parallel.h>
#include <torch/utils.h>

#include "mnist/augment.hpp"
#include "mnist/checkpoint.hpp"
#include "mnist/class_weight.hpp"
#include "mnist/csv_log.hpp"
#include "mnist/cuda_graph.hpp"
#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/history.hpp"
#include "mnist/idx.hpp"
#include "mnist/onednn.hpp"
#include "mnist/tensorboard.hpp"
#include "train_settings.hpp"

using nlohmann::ordered_json;

namespace mnist {

namespace {

using Level = TrainJobObserver::Level;

/// How often the observer hears of batches (train()'s default pace).
const int64_t kProgressEvery = TrainConfig{}.progress_every;

// --- The model's layers: the only places this file reads them. ---

std::string last_layer_name(const Model& model) {
  return model->spec().layers[model->graph().nodes[model->graph().output].layer]->name;
}

std::string layer_name(const Model& model, size_t index) {
  return model->spec().layers.at(index)->name;
}

std::string output_shape_text(const Model& model) {
  return shape_text(model->node_output_shape(model->graph().output));
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

void TrainJobObserver::log(Level, const std::string&) {}
std::string TrainJobObserver::name_of(Setting setting) const { return setting_field(setting); }
std::string TrainJobObserver::resume_command() const { return ""; }
void TrainJobObserver::on_model(const Model&) {}
const std::atomic<bool>* TrainJobObserver::stop_flag() { return nullptr; }
void TrainJobObserver::on_decode(const DecodeProgress&) {}
void TrainJobObserver::on_batch(const BatchProgress&) {}
void TrainJobObserver::on_epoch(const EpochStats&) {}
void TrainJobObserver::on_break() {}
void TrainJobObserver::on_evaluation(const EvalResult&) {}
void TrainJobObserver::on_saved(Saved, const std::string&) {}

// --- The job ---

namespace {

/// One run of the job, in phases that run() calls in the order the job has
/// always taken its steps. The members are what the phases share, declared
/// in the order the job makes them, so that they go in the reverse one (the
/// csv log closed before the checkpoint folder's lock is released).
class TrainJob {
 public:
  TrainJob(const TrainSettings& settings, TrainJobObserver& observer)
      : s_(settings), observer_(observer), epoch_callbacks_(settings.callbacks) {}

  TrainJobResult run();

 private:
  void info(const std::string& line) { observer_.log(Level::kInfo, line); }
  void warn(const std::string& line) { observer_.log(Level::kWarn, line); }
  std::string name(Setting setting) const { return observer_.name_of(setting); }

  void check_before_data();
  void index_folder();
  void prepare_model();
  void decode_folder();
  void load_folder_data();
  void check_data(const std::string& what);
  const std::atomic<bool>* stop_flag();
  void prepare_run();
  void load_data();
  void prepare_class_weights();
  void start_weights_and_optimizer();
  void take_saved_optimizer_state();
  void plan_learning_rate();
  void resume_checkpoint_state();
  void configure_training();
  void open_tensorboard();
  TrainCallbacks train_callbacks();
  bool on_epoch_end(const EpochStats& e);
  void write_checkpoint(const TrainState& at);
  void report_interruption();
  void finish(TrainJobResult& result);
  void save_final_model(bool restored, bool best_saved, const EvalResult& test);

  const TrainSettings& s_;
  TrainJobObserver& observer_;
  const std::chrono::steady_clock::time_point job_start_ = std::chrono::steady_clock::now();
  c10::Device device_{c10::kCPU};
  std::optional<FolderLock> checkpoint_lock_;
  std::optional<Checkpoint> checkpoint_;
  std::unique_ptr<CsvLog> csv_;
  std::optional<TensorBoardUpdate> tensorboard_update_;  ///< set: --tensorboard-dir given
  std::optional<FolderLock> tensorboard_lock_;
  uint64_t seed_ = 0;
  std::optional<AugmentSpec> augment_;  ///< parsed from the settings; unset: none
  LabelSet labels_;                     ///< the classes it learns
  Model model_{nullptr};
  std::string origin_;  ///< the start model's checkpoint or folder ("": mnist-node's)
  TrainSettings run_;   ///< as it runs: what history.json and checkpoints record
  MnistData data_;      ///< the labels' records only, relabelled
  Split split_;
  std::string data_dir_;
  // A folder dataset: its files, split, decoded images, and its record.
  std::optional<FolderIndex> folder_;
  FolderSplit folder_split_;
  std::optional<DecodedImages> decoded_;
  ordered_json data_record_;
  // The observer's stop flag, asked for once (its first ask installs the
  // CLI's signal handlers): from decoding a folder on, else from training.
  std::optional<const std::atomic<bool>*> stop_;
  ClassWeights class_weights_;  ///< empty: none
  std::optional<Optimizer> optimizer_;
  TrainingCallbacks epoch_callbacks_;
  std::vector<at::Tensor> best_weights_;  // EarlyStopping's, with restore_best_weights
  TrainState state_;
  TrainConfig cfg_;
  std::unique_ptr<TensorBoardLog> tensorboard_;  ///< opened once the batches per epoch are known
  std::string last_checkpoint_;
};

TrainJobResult TrainJob::run() {
  check_before_data();
  index_folder();
  prepare_model();
  prepare_run();
  load_data();
  prepare_class_weights();
  start_weights_and_optimizer();
  resume_checkpoint_state();
  configure_training();
  open_tensorboard();
  tune_allocator();  // after loading, before the first batch
  const TrainCallbacks callbacks = train_callbacks();
  TrainJobResult result;
  result.outcome = TrainOutcome::kStoppedEarly;
  if (epoch_callbacks_.stopped_epoch() > 0) {
    info(
        fmt::format("the checkpoint's run had stopped early after epoch {}: nothing left to "
                    "train",
                    epoch_callbacks_.stopped_epoch()));
  } else {
    result.outcome =
        train(model_, *optimizer_, split_.train, split_.validation, cfg_, state_, callbacks);
  }
  result.last_checkpoint = last_checkpoint_;
  if (result.outcome == TrainOutcome::kStopped) {
    report_interruption();
    return result;
  }
  finish(result);
  return result;
}

/// Fail fast: the device, the save and checkpoint folders, the checkpoint to
/// resume from, the csv log and the TensorBoard folder are checked before
/// any data is loaded; and the seed.
void TrainJob::check_before_data() {
  device_ = select_device(s_.gpu);
  if (!s_.model_save_path.empty()) {
    require_writable(s_.model_save_path, "model folder", Remedy::kOtherModelFolder);
  }
  // A job owns its checkpoint folder for the whole run: a second one with
  // the same folder is refused before any work.
  if (!s_.checkpoint_dir.empty()) {
    require_writable(s_.checkpoint_dir, "checkpoint folder", Remedy::kOtherCheckpointFolder);
    checkpoint_lock_.emplace(FolderLock::take(s_.checkpoint_dir, "checkpoint folder"));
  }
  if (s_.resume) {
    const std::string latest = latest_checkpoint(s_.checkpoint_dir);
    if (latest.empty()) {
      throw ConfigError(s_.checkpoint_dir + ": no complete checkpoint to resume from");
    }
    checkpoint_ = load_checkpoint(latest);
  }
  // Opened before any data is read, so that a bad path fails fast; a resumed
  // run keeps the rows of the epochs its checkpoint holds.
  if (!s_.csv_log.empty()) {
    csv_ = std::make_unique<CsvLog>(
        s_.csv_log, s_.resume, checkpoint_ ? checkpoint_->state.epoch : 1, s_.validation_split > 0);
  }
  // The TensorBoard folder is held for the whole run (a second run there
  // would remove or trim this one's files); its event files are opened once
  // the batches per epoch are known (open_tensorboard).
  if (!s_.tensorboard_dir.empty()) {
    tensorboard_update_ = parse_tensorboard_update(s_.tensorboard_update_freq);
    if (!tensorboard_update_) {
      throw ConfigError("tensorboard_update_freq '" + s_.tensorboard_update_freq +
                        "': expected epoch or batch");
    }
    require_writable(s_.tensorboard_dir, "TensorBoard folder", Remedy::kNone);
    // The model or checkpoint folder itself is locked by this job already
    // (a second lock there would wait on this one around each save).
    std::error_code ec;
    const auto is = [&](const std::string& other) {
      return !other.empty() && std::filesystem::equivalent(s_.tensorboard_dir, other, ec);
    };
    if (!is(s_.checkpoint_dir) && !is(s_.model_save_path)) {
      tensorboard_lock_.emplace(FolderLock::take(s_.tensorboard_dir, "TensorBoard folder"));
    }
  }
  std::optional<uint64_t> checkpoint_seed;
  if (checkpoint_) {
    checkpoint_seed = checkpoint_settings(checkpoint_->settings, checkpoint_->path).seed;
    if (!checkpoint_seed) {
      throw FormatError(checkpoint_->path + ": its settings hold no seed");
    }
  }
  seed_ = checkpoint_seed ? *checkpoint_seed : s_.seed ? *s_.seed : random_seed();
  check_lr_schedule(s_.lr_schedule, s_.epochs, s_.learning_rate > 0,
                    s_.callbacks.reduce_lr_patience > 0);
  if (!s_.augment.empty()) {
    augment_ = parse_augment_spec(s_.augment);
    if (s_.augment_threads < 1 || s_.augment_threads > 1024) {
      throw ConfigError(
          fmt::format("augment_threads must be 1 to 1024, not {}", s_.augment_threads));
    }
  }
  data_dir_ = data_dir_for(s_, observer_);
}

/// A folder of class subfolders as the data: its classes and files, and the
/// settings that only MNIST's files take refused.
void TrainJob::index_folder() {
  if (!is_image_folder(data_dir_)) {
    if (s_.test_split > 0) {
      throw ConfigError(name(Setting::kTestSplit) + ": " + data_dir_ +
                        " holds MNIST's IDX files, whose test set is their own t10k files");
    }
    return;
  }
  if (!s_.labels.empty()) {
    throw ConfigError(name(Setting::kLabels) + " picks MNIST digits; the classes of " + data_dir_ +
                      " are its subfolders (train on some of them by moving the others away)");
  }
  if (s_.dataset != DatasetKind::kMnist) {
    throw ConfigError(std::string("--dataset ") + dataset_name(s_.dataset) + ": " + data_dir_ +
                      " is a folder of images, not of IDX files");
  }
  if (s_.validation_split < 0 || s_.test_split < 0 || s_.validation_split + s_.test_split >= 1) {
    throw ConfigError(fmt::format("{} {} and {} {}: each must be at least 0 and together below 1",
                                  name(Setting::kValidationSplit), s_.validation_split,
                                  name(Setting::kTestSplit), s_.test_split));
  }
  folder_ = index_image_folder(data_dir_);
  if (folder_->subsets && !folder_->test.empty() && s_.test_split > 0) {
    warn(name(Setting::kTestSplit) + " is not used: " + data_dir_ + " has a test/ folder");
  }
  folder_split_ = split_image_folder(*folder_, s_.validation_split, s_.test_split, seed_);
  info(fmt::format(
      "{}: {} classes ({}{}), {} image files{}{}", data_dir_, folder_->class_names.size(),
      fmt::join(folder_->class_names.begin(),
                folder_->class_names.begin() + std::min<size_t>(folder_->class_names.size(), 10),
                ", "),
      folder_->class_names.size() > 10 ? ", ..." : "",
      folder_->train.size() + folder_->validation.size() + folder_->test.size(),
      folder_->hidden > 0 ? fmt::format("; {} hidden files skipped", folder_->hidden) : "",
      folder_->other_files > 0
          ? fmt::format("; {} files of other kinds skipped", folder_->other_files)
          : ""));
}

/// The folder's images, decoded (or from the cache) at the model's input
/// size and colours, else as the settings or the images say.
void TrainJob::decode_folder() {
  ImageSpec spec;
  spec.height = s_.image_height;
  spec.width = s_.image_width;
  const std::string flag_size =
      fmt::format("{} {},{}", name(Setting::kImageSize), s_.image_height, s_.image_width);
  if (!s_.color_mode.empty()) {
    const auto mode = parse_color_mode(s_.color_mode);
    if (!mode) {
      throw ConfigError(name(Setting::kColorMode) + " '" + s_.color_mode +
                        "': expected grayscale or rgb");
    }
    spec.color_mode = *mode;
  }
  bool color_auto = s_.color_mode.empty();
  const auto interpolation = parse_interpolation(s_.interpolation);
  if (!interpolation) {
    throw ConfigError("interpolation '" + s_.interpolation + "': expected bilinear or nearest");
  }
  spec.interpolation = *interpolation;
  spec.crop_to_aspect_ratio = s_.crop_to_aspect_ratio;
  if (model_) {
    const Shape& input = model_->spec().input_shape;
    const std::string origin = checkpoint_ ? checkpoint_->path : s_.model_load_path;
    if (input.size() == 3 && (input[2] == 1 || input[2] == 3)) {
      if (s_.image_height > 0 && (s_.image_height != input[0] || s_.image_width != input[1])) {
        throw ConfigError(
            fmt::format("{}: the model's input is {}; {} makes images of another "
                        "size: leave it out, and the images are resized to the "
                        "model's",
                        origin, shape_text(input), flag_size));
      }
      const ColorMode model_mode = input[2] == 3 ? ColorMode::kRgb : ColorMode::kGrayscale;
      if (!color_auto && spec.color_mode != model_mode) {
        throw ConfigError(
            fmt::format("{}: the model's input is {}; {} {} gives {} channel(s): "
                        "leave it out",
                        origin, shape_text(input), name(Setting::kColorMode), s_.color_mode,
                        channels_of(spec.color_mode)));
      }
      spec.height = input[0];
      spec.width = input[1];
      spec.color_mode = model_mode;
      color_auto = false;
    } else if (input.size() != 1 || s_.image_height == 0 || color_auto) {
      throw ConfigError(fmt::format(
          "{}: the model's input is {}, which is not an image of 1 or "
          "3 channels; a model of flat input takes images when {} "
          "and {} say how they are read",
          origin, shape_text(input), name(Setting::kImageSize), name(Setting::kColorMode)));
    }
  }
  // Every file of the folder, in the index's order: the cache does not
  // depend on the seed or the split.
  std::vector<ImageFile> files = folder_->train;
  files.insert(files.end(), folder_->validation.begin(), folder_->validation.end());
  files.insert(files.end(), folder_->test.begin(), folder_->test.end());
  DecodeOptions options;
  options.cache_dir = s_.cache_dir;
  options.threads = s_.threads;
  options.on_progress = [this](const DecodeProgress& p) { observer_.on_decode(p); };
  options.stop = stop_flag();
  decoded_ = decode_image_files(data_dir_, files, spec, color_auto, options);
  const ImageSpec& got = decoded_->spec;
  info(fmt::format("images: {}x{} {}{}, {} in {:.2f} s{}", got.height, got.width,
                   color_mode_name(got.color_mode),
                   got.crop_to_aspect_ratio ? " (cropped to the aspect ratio)" : "",
                   decoded_->from_cache ? "read from the cache " + decoded_->cache_path
                                        : fmt::format("{} decoded", files.size()),
                   decoded_->seconds,
                   decoded_->from_cache || decoded_->cache_path.empty()
                       ? ""
                       : "; cached in " + decoded_->cache_path));
  if (!decoded_->cache_problem.empty()) {
    warn(decoded_->cache_problem);
  }
  if (!decoded_->bad.empty()) {
    const std::string list =
        fmt::format("{}: {} of its {} cannot be used:{}", data_dir_, decoded_->bad.size(),
                    file_count_text(files.size()), bad_images_text(decoded_->bad));
    if (!s_.skip_bad_images) {
      throw DataError(list, Remedy::kSkipBadImages);
    }
    warn(list + "\n(skipped: they are listed in history.json)");
  }
}

/// The folder's subsets as datasets (views of the decoded images), its
/// bad images left out, and their record for history.json.
void TrainJob::load_folder_data() {
  std::unordered_map<std::string, int64_t> row_of;
  {
    int64_t row = 0;
    for (const auto* list : {&folder_->train, &folder_->validation, &folder_->test}) {
      for (const auto& f : *list) {
        row_of.emplace(f.path, row++);
      }
    }
  }
  ordered_json files = ordered_json::object();
  const auto take = [&](const std::vector<ImageFile>& list, int64_t limit, const char* what) {
    std::vector<int64_t> rows;
    std::vector<int64_t> labels;
    ordered_json names = ordered_json::array();
    for (const auto& f : list) {
      if (limit > 0 && static_cast<int64_t>(rows.size()) == limit) {
        break;
      }
      const int64_t row = row_of.at(f.path);
      if (decoded_->ok[static_cast<size_t>(row)]) {
        rows.push_back(row);
        labels.push_back(f.label);
        names.push_back(f.path);
      }
    }
    files[what] = std::move(names);
    return folder_dataset(*decoded_, rows, labels);
  };
  split_.train = take(folder_split_.train, s_.train_limit, "train");
  split_.validation = take(folder_split_.validation, 0, "validation");
  data_.train = split_.train;
  data_.test = take(folder_split_.test, s_.test_limit, "test");
  if (split_.train.size() == 0) {
    throw DataError(data_dir_ + ": no training images are left (" +
                    file_count_text(folder_split_.train.size()) + ", none usable)");
  }
  ordered_json bad = ordered_json::array();
  for (const auto& b : decoded_->bad) {
    bad.push_back({{"path", b.path}, {"reason", b.reason}});
  }
  const ImageSpec& spec = decoded_->spec;
  data_record_ = {{"folder", data_dir_},
                  {"class_names", folder_->class_names},
                  {"image_size", {spec.height, spec.width}},
                  {"color_mode", color_mode_name(spec.color_mode)},
                  {"split", folder_->subsets ? "folders" : "shuffled with the seed, as Keras"},
                  {"files", files},
                  {"bad_images", bad}};
  check_data("");
}

/// The end of loading either kind of data: the training images checked
/// against the model before any training work, the data line (`what`: what
/// follows the folder's name), and a batch larger than the training set.
void TrainJob::check_data(const std::string& what) {
  try {
    check_input(model_, split_.train.images);
  } catch (const ConfigError& e) {
    throw ConfigError(origin_ + ": " + e.what());
  }
  info(fmt::format("data: {} training, {} validation, {} test images from {}{}",
                   split_.train.size(), split_.validation.size(), data_.test.size(), data_dir_,
                   what));
  if (s_.batch_size > split_.train.size() && split_.train.size() > 0) {
    warn(
        fmt::format("{} {} is more than the {} training images: each epoch is one step of all "
                    "of them",
                    name(Setting::kBatchSize), s_.batch_size, split_.train.size()));
  }
}

/// The start model (the checkpoint's, a saved one, or mnist-node's), the
/// labels it learns and its head, its frozen layers; and the format it is to
/// be saved in, checked now rather than after the training.
void TrainJob::prepare_model() {
  const LabelSet given_labels = s_.labels.empty() ? LabelSet() : parse_labels(s_.labels);
  if (folder_) {
    // The model's input decides how the images are decoded; without one,
    // mnist-node's model is made for the images and the folder's classes.
    model_ = checkpoint_                   ? checkpoint_->model
             : !s_.model_load_path.empty() ? load_tfjs(s_.model_load_path)
                                           : Model(nullptr);
    decode_folder();
    if (!model_) {
      const ImageSpec& spec = decoded_->spec;
      ModelSpec made =
          mnist_node_spec(s_.dropout, static_cast<int64_t>(folder_->class_names.size()));
      made.input_shape = {spec.height, spec.width, channels_of(spec.color_mode)};
      model_ = Model(std::move(made));
    }
  } else {
    model_ =
        checkpoint_ ? checkpoint_->model
        : !s_.model_load_path.empty()
            ? load_tfjs(s_.model_load_path)
            : Model(mnist_node_spec(s_.dropout, given_labels.empty()
                                                    ? kNumClasses
                                                    : static_cast<int64_t>(given_labels.size())));
  }
  // The classes it learns: the labels asked for, else the ones the model knows.
  const int64_t outputs = model_outputs(model_);
  if (outputs == 0) {  // a per-pixel or per-row output: no labels to count
    throw ConfigError((checkpoint_ ? checkpoint_->path : s_.model_load_path) +
                      ": the model's output is " + output_shape_text(model_) +
                      "; training needs a classifier's, one probability per class ([null,K])");
  }
  const LabelSet model_labels = labels_of(model_->spec().metadata, outputs);
  labels_ = given_labels.empty() ? model_labels : given_labels;
  if (folder_) {
    labels_.resize(folder_->class_names.size());
    for (size_t c = 0; c < labels_.size(); ++c) {
      labels_[c] = static_cast<int64_t>(c);
    }
  }
  const auto classes = static_cast<int64_t>(labels_.size());
  origin_ = checkpoint_ ? checkpoint_->path : s_.model_load_path;
  const std::string new_head = "; add " + name(Setting::kReplaceHead) +
                               " to give it a new last Dense layer of " + std::to_string(classes) +
                               " units";
  if (s_.replace_head) {
    torch::manual_seed(seed_);  // the new head's weights come from the seed
    model_ = replace_head(model_, classes);
    info(fmt::format("new head: {} has {} units, for labels {}", last_layer_name(model_), classes,
                     labels_text(labels_)));
  } else if (folder_ && outputs != classes) {
    throw ConfigError(origin_ + ": the model's output is " + output_shape_text(model_) + ", and " +
                      data_dir_ + " has " + std::to_string(classes) + " classes" + new_head);
  } else if (folder_) {
    // The same number of classes: a loaded model's must be the same ones
    // (mnist-node's model made for the folder has no names yet: the
    // folder's are given to it below).
    const auto model_names = class_names_of(model_->spec().metadata, outputs);
    if (!checkpoint_ && !s_.model_load_path.empty() && model_names != folder_->class_names) {
      throw ConfigError(origin_ + ": the model's classes are " +
                        fmt::format("{}", fmt::join(model_names, ", ")) + "; " + data_dir_ +
                        "'s are " + fmt::format("{}", fmt::join(folder_->class_names, ", ")) +
                        new_head);
    }
  } else if (outputs < 2 || outputs > kNumClasses) {
    throw ConfigError(origin_ + ": the model's output is " + output_shape_text(model_) +
                      "; mnist-train trains classifiers of 2 to 10 outputs, one per label" +
                      new_head);
  } else if (outputs != classes) {
    throw ConfigError(origin_ + ": the model has " + std::to_string(outputs) + " outputs (labels " +
                      labels_text(model_labels) + "), " + name(Setting::kLabels) + " " + s_.labels +
                      " needs " + std::to_string(classes) + new_head);
  }
  if (!checkpoint_) {  // the data it is trained on now
    model_->set_metadata(
        folder_ ? folder_metadata(model_->spec().metadata, folder_->class_names, decoded_->spec)
                : with_labels(model_->spec().metadata, s_.dataset, labels_));
  }
  if (const std::string problem = training_problem(model_); !problem.empty()) {
    throw ConfigError(s_.model_load_path + ": " + problem);
  }
  if (!s_.freeze_up_to.empty()) {
    const size_t frozen = freeze_up_to(model_, s_.freeze_up_to);
    info(fmt::format("frozen: layers 0-{} ({} to {}); {} of {} parameters train", frozen - 1,
                     layer_name(model_, 0), layer_name(model_, frozen - 1),
                     count_trainable_params(model_), count_params(model_)));
  }
  // The saved model's format is checked now, not after the training.
  if (const auto problem = save_format_problem(model_, s_.save_format)) {
    throw ConfigError(*problem);
  }
}

/// The CPU threads, the checkpoint's settings against this run's, and the
/// settings as the run records them.
void TrainJob::prepare_run() {
  const int threads = configure_cpu_threads(s_.threads);
  if (const unsigned cores = std::thread::hardware_concurrency();
      cores > 0 && static_cast<unsigned>(threads) > cores) {
    warn(fmt::format("{} {} is more than the {} cores here: training is usually slower so",
                     name(Setting::kThreads), threads, cores));
  }
  run_ = s_;
  // The augmentation as its canonical text: what a resumed run compares and
  // what history.json and checkpoints record.
  run_.augment = augment_ ? augment_spec_text(*augment_) : "";
  if (checkpoint_) {
    TrainSettings now = s_;
    now.augment = run_.augment;
    check_resumable(detail::resume_record(checkpoint_->settings, checkpoint_->path),
                    legacy_settings_json(now), checkpoint_->path);
    // Cosine and one-cycle spread over the whole run's steps: another
    // number of epochs would change the rates of the steps already taken.
    const LrScheduleKind kind = s_.lr_schedule.kind;
    const int64_t epochs = checkpoint_settings(checkpoint_->settings, checkpoint_->path).epochs;
    if ((kind == LrScheduleKind::kCosine || kind == LrScheduleKind::kOneCycle) &&
        epochs != s_.epochs) {
      throw ConfigError(fmt::format("{} was made with epochs = {}, this run has {}: the {} "
                                    "learning-rate schedule spans all the run's steps",
                                    checkpoint_->path, epochs, s_.epochs, lr_schedule_name(kind)),
                        Remedy::kSameSettings);
    }
  }
  run_.seed = seed_;
  run_.threads = threads;
  run_.data_dir = data_dir_;
  observer_.log(Level::kDebug, "settings: " + legacy_settings_json(run_).dump());
}

/// The data, its labels' records only, checked against the model, and its
/// validation split.
void TrainJob::load_data() {
  if (folder_) {
    load_folder_data();
    return;
  }
  const std::string& data_dir = run_.data_dir;
  const MnistData all_data = load_mnist(data_dir, s_.train_limit, s_.test_limit);
  // Those labels' records only, relabelled; the validation split is taken
  // from them, as fit({validationSplit}) on a filtered dataset would.
  data_ = {select_labels(all_data.train, labels_), select_labels(all_data.test, labels_)};
  for (const auto& [set, all, what] : {std::tuple{&data_.train, &all_data.train, "training"},
                                       std::tuple{&data_.test, &all_data.test, "test"}}) {
    if (all->size() == 0) {
      throw DataError(data_dir + ": the " + what + " images file holds no images");
    }
    if (set->size() == 0) {
      throw DataError(data_dir + ": none of the " + std::to_string(all->size()) + " " + what +
                      " images has one of the labels " + labels_text(labels_));
    }
  }
  split_ = split_validation(data_.train, s_.validation_split);
  check_data((s_.dataset == DatasetKind::kMnist
                  ? ""
                  : std::string(" (") + dataset_name(s_.dataset) + ")") +
             (labels_ == all_labels() ? "" : ", labels " + labels_text(labels_)));
}

/// The class weights, if asked for, logged per class: "balanced" from the
/// labels of the training split (after the validation split: the images
/// whose loss they weigh; TF.js's fit({validationSplit, classWeight}) looks
/// up the weights of all the images before it splits, which only makes a
/// class seen in validation alone an error there), or a file's. A resumed
/// run computes them again from the same split (class_weight is one of the
/// settings it must keep).
void TrainJob::prepare_class_weights() {
  if (s_.class_weight.empty()) {
    return;
  }
  const int64_t outputs = model_outputs(model_);
  const std::vector<std::string> names = class_names_of(model_->spec().metadata, outputs);
  if (s_.class_weight == "balanced") {
    try {
      class_weights_ = balanced_class_weights(split_.train.labels, outputs);
    } catch (const DataError& e) {
      throw DataError(run_.data_dir + ": " + e.what());
    }
    info(fmt::format("class weights, balanced over the {} training images: {}", split_.train.size(),
                     class_weights_text(class_weights_, names)));
  } else {
    class_weights_ = read_class_weights(s_.class_weight, names);
    info(fmt::format("class weights from {}: {}", s_.class_weight,
                     class_weights_text(class_weights_, names)));
  }
}

/// The weights (TF.js's initialisers drawn from the seed, or the start
/// model's) on the device, and the optimizer.
void TrainJob::start_weights_and_optimizer() {
  info(fmt::format("device: {}; precision {}; seed {}", describe_device(device_),
                   precision_name(s_.precision), seed_));

  torch::manual_seed(seed_);
  if (s_.model_load_path.empty() && !checkpoint_) {
    model_->reset_tfjs();  // TF.js initialisers, drawn from the seed
  } else {
    info("starting from " + origin_);
  }
  model_->to(device_);
  to_channels_last(model_);
  optimizer_.emplace(model_->parameters(), s_.optimizer, s_.learning_rate);
  if (!checkpoint_ && model_->saved_optimizer.count > 0) {
    take_saved_optimizer_state();
  }
  plan_learning_rate();
}

/// A learning-rate schedule's plan for this run's steps (none for the
/// constant rate: training then takes the path it always took). Its rate is
/// the run's (the optimizer's default unless given), not a checkpoint's.
void TrainJob::plan_learning_rate() {
  const int64_t n = split_.train.size();
  if (is_unscheduled(s_.lr_schedule) || n == 0) {  // no images: train() says so
    return;
  }
  const int64_t batch = std::min(s_.batch_size, n);
  const double rate =
      s_.learning_rate > 0 ? s_.learning_rate : optimizer_defaults(s_.optimizer).learning_rate;
  cfg_.lr_plan = plan_lr_schedule(s_.lr_schedule, rate, (n + batch - 1) / batch, s_.epochs);
}

/// includeOptimizer: go on from TF.js's optimizer state, as its fit() does
/// on a loaded model that is not compiled again.
void TrainJob::take_saved_optimizer_state() {
  const auto& saved = model_->saved_optimizer;
  Optimizer& optimizer = *optimizer_;
  std::string why = s_.fresh_optimizer ? name(Setting::kFreshOptimizer)
                    : s_.replace_head  ? "the model has a new head"
                                       : "";
  if (why.empty()) {
    std::vector<std::string> names;
    for (const auto& p : model_->named_parameters()) {
      names.push_back(p.key());
    }
    why = load_tfjs_state(optimizer, names, saved.class_name, saved.config, saved.weights);
  }
  if (why.empty()) {
    info(fmt::format("optimizer: {} goes on from the state saved with {} (step {}, {} weights)",
                     optimizer_name(s_.optimizer), s_.model_load_path, optimizer.iterations(),
                     saved.count));
  } else {
    warn(
        fmt::format("{}: its {} optimizer weights (saved with includeOptimizer) are not used "
                    "({}): the {} optimizer starts afresh",
                    s_.model_load_path, saved.count, why, optimizer_name(s_.optimizer)));
  }
}

/// A resumed run's optimizer, callbacks, best weights, place in training
/// and random generators, from its checkpoint.
void TrainJob::resume_checkpoint_state() {
  if (checkpoint_) {
    if (checkpoint_->optimizer != s_.optimizer) {
      throw ConfigError(checkpoint_->path + " was made with " + name(Setting::kOptimizer) + " " +
                            optimizer_name(checkpoint_->optimizer),
                        Remedy::kSameSettings);
    }
    optimizer_->load_state(checkpoint_->optimizer_slots, checkpoint_->optimizer_iterations);
    optimizer_->set_learning_rate(checkpoint_->learning_rate);
    if (!checkpoint_->callbacks.is_null()) {
      epoch_callbacks_.load_state(checkpoint_->callbacks);
    }
    best_weights_ = checkpoint_->best_weights;
    state_ = checkpoint_->state;
    restore_generators(*checkpoint_);
    info(fmt::format("resuming at epoch {}, batch {}", state_.epoch, state_.batch));
  }
  info(cfg_.lr_plan ? fmt::format("optimizer: {}; learning rate: {}", optimizer_name(s_.optimizer),
                                  lr_plan_text(*cfg_.lr_plan))
                    : fmt::format("optimizer: {}, learning rate {:g}", optimizer_name(s_.optimizer),
                                  optimizer_->learning_rate()));
  observer_.on_model(model_);
}

/// train()'s configuration, and the kernels and training step that run.
void TrainJob::configure_training() {
  cfg_.epochs = s_.epochs;  // in all: a resumed run continues its count; a loaded
                            // model trains this many more
  cfg_.batch_size = s_.batch_size;
  cfg_.device = device_;
  cfg_.precision = resolve_precision(s_.precision, device_, observer_);
  cfg_.cuda_graphs = s_.cuda_graphs;
  cfg_.shuffle = s_.shuffle;
  cfg_.class_weights = class_weights_;
  if (augment_) {
    // Its draws come from the run's seed (the checkpoint's when resumed):
    // a pure function of it, the epoch, the batch and the slot.
    cfg_.augmenter.emplace(*augment_, seed_);
    cfg_.augment_threads = s_.augment_threads;
    info(fmt::format(
        "augmentation: {}; on {} CPU thread{} beside the step's {}{}", run_.augment,
        s_.augment_threads, s_.augment_threads == 1 ? "" : "s", at::get_num_threads(),
        device_.is_cuda() && s_.cuda_graphs ? " (no CUDA graph while augmenting)" : ""));
  }
  set_onednn_enabled(s_.onednn);
  if (device_.is_cpu()) {
    info(s_.onednn ? describe_cpu_kernels(cfg_.precision == Precision::kBFloat16)
                   : "convolutions: libtorch's (" + name(Setting::kNoOnednn) +
                         "); max pooling: libtorch's");
  }
  if (device_.is_cuda()) {
    info(std::string("training step: ") +
         (!s_.cuda_graphs ? "eager (" + name(Setting::kNoCudaGraphs) + ")"
          : GraphedStep::available()
              ? std::string("CUDA graph")
              : std::string("eager (this build has no CUDA graph support)")));
  }
  run_.precision = cfg_.precision;
}

/// The TensorBoard log, as Keras's callback keeps it: a fresh run's replaces
/// earlier runs' files, a resumed run's drops the events its checkpoint
/// does not hold (written again now), so that no step is there twice.
/// With batch figures, train() reports every batch.
void TrainJob::open_tensorboard() {
  if (!tensorboard_update_) {
    return;
  }
  // train()'s batches per epoch: a batch larger than the set is the set
  // (no training images, which train() refuses: no batch).
  const int64_t n = split_.train.size();
  const int64_t batch_size = std::max<int64_t>(1, std::min(cfg_.batch_size, n));
  const int64_t batches = (n + batch_size - 1) / batch_size;
  std::optional<TensorBoardResume> resume;
  if (checkpoint_) {
    resume = TensorBoardResume{state_.epoch - 1, (state_.epoch - 1) * batches + state_.batch,
                               optimizer_->iterations()};
  }
  tensorboard_ = std::make_unique<TensorBoardLog>(s_.tensorboard_dir, *tensorboard_update_,
                                                  split_.validation.size() > 0, batches, resume);
  if (*tensorboard_update_ == TensorBoardUpdate::kBatch) {
    cfg_.progress_every = 1;
  }
  info(fmt::format(
      "TensorBoard: {}/train{}, {} figures{}", s_.tensorboard_dir,
      split_.validation.size() > 0 ? " and validation" : "",
      s_.tensorboard_update_freq == "batch" ? "batch and epoch" : "epoch",
      tensorboard_->removed_files() > 0
          ? fmt::format("; {} events file{} of an earlier run removed",
                        tensorboard_->removed_files(),
                        tensorboard_->removed_files() == 1 ? "" : "s")
      : tensorboard_->dropped_events() > 0
          ? fmt::format("; {} events after the checkpoint dropped", tensorboard_->dropped_events())
          : ""));
}

const std::atomic<bool>* TrainJob::stop_flag() {
  if (!stop_) {
    stop_ = observer_.stop_flag();
  }
  return *stop_;
}

/// What train() calls: progress, the epoch's figures (and csv row), the
/// callbacks' decisions, and the checkpoints.
TrainCallbacks TrainJob::train_callbacks() {
  TrainCallbacks callbacks;
  callbacks.stop = stop_flag();
  callbacks.on_batch = [this](const BatchProgress& p) {
    if (tensorboard_) {
      tensorboard_->on_batch(p);
    }
    // The observer keeps its pace when TensorBoard takes every batch.
    if (p.batch % kProgressEvery == 0 || p.batch == p.batches) {
      observer_.on_batch(p);
    }
  };
  callbacks.on_epoch = [this](const EpochStats& e) {
    observer_.on_epoch(e);
    if (csv_) {
      csv_->write(e);
    }
    if (tensorboard_) {
      tensorboard_->on_epoch(e, optimizer_->iterations());
    }
  };
  callbacks.stop_training = [this](const EpochStats& e) { return on_epoch_end(e); };
  if (!s_.checkpoint_dir.empty()) {
    callbacks.on_checkpoint = [this](const TrainState& at) { write_checkpoint(at); };
  }
  return callbacks;
}

/// What the callbacks decide for a finished epoch, acted on: keep the best
/// weights, save the best model, set the rate; true: stop training.
bool TrainJob::on_epoch_end(const EpochStats& e) {
  const EpochDecision d = epoch_callbacks_.on_epoch_end(e, optimizer_->learning_rate());
  if (d.keep_best_weights) {
    best_weights_ = copy_parameters(model_);
  }
  if (d.save_best) {
    const auto lock = lock_model_folder(s_.model_save_path, s_.checkpoint_dir, observer_);
    save_tfjs(model_, s_.model_save_path, s_.save_format);
    info(fmt::format("epoch {}: {} = {:.4f}, the best so far: model saved to {}", e.epoch,
                     monitor_name(s_.callbacks.monitor), epoch_callbacks_.save_best_value(),
                     s_.model_save_path));
    observer_.on_saved(Saved::kBestModel, s_.model_save_path);
  }
  if (d.new_learning_rate) {
    optimizer_->set_learning_rate(*d.new_learning_rate);
    info(fmt::format("epoch {}: {}", e.epoch, d.learning_rate_reason));
  }
  if (d.stop) {
    info(d.stop_reason);
  }
  return d.stop;
}

void TrainJob::write_checkpoint(const TrainState& at) {
  try {
    last_checkpoint_ = save_checkpoint(
        s_.checkpoint_dir, model_, *optimizer_, at, to_json(run_), device_,
        epoch_callbacks_.active() ? epoch_callbacks_.state() : ordered_json(), best_weights_);
  } catch (const IoError& e) {
    // A run that cannot checkpoint stops rather than train on
    // unprotected; the last complete checkpoint is where to go on from.
    observer_.on_break();
    const std::string good = !last_checkpoint_.empty() ? last_checkpoint_
                             : checkpoint_             ? checkpoint_->path
                                                       : "";
    const std::string command = observer_.resume_command();
    throw IoError(std::string(e.what()) + "; training stopped " +
                  (at.batch == 0 ? "after epoch " + std::to_string(at.epoch - 1)
                                 : "in epoch " + std::to_string(at.epoch)) +
                  (good.empty() ? " with no checkpoint of this run"
                                : "; resume from " + good + " once there is room" +
                                      (command.empty() ? "" : ", with: " + command)));
  }
  observer_.log(Level::kDebug, "checkpoint: " + last_checkpoint_);
  observer_.on_saved(Saved::kCheckpoint, last_checkpoint_);
}

void TrainJob::report_interruption() {
  observer_.on_break();
  if (last_checkpoint_.empty()) {
    warn("interrupted: nothing was saved (train with " + name(Setting::kCheckpointDir) +
         " DIR to be able to resume)");
  } else {
    const std::string command = observer_.resume_command();
    warn("interrupted: checkpoint written to " + last_checkpoint_ +
         (command.empty() ? "" : "; resume with: " + command));
  }
}

/// The trained model's end: the best weights back or the best epoch's saved
/// model, the test evaluation, and the final save.
void TrainJob::finish(TrainJobResult& result) {
  // Keras 3's EarlyStopping.on_train_end: the best weights come back
  // whenever restore_best_weights is set, stopped early or not.
  const bool restored = s_.callbacks.restore_best_weights && !best_weights_.empty();
  if (restored) {
    load_parameters(model_, best_weights_);
    info(fmt::format("restored the weights of epoch {} (the best {})",
                     epoch_callbacks_.early_stopping_best_epoch(),
                     monitor_name(s_.callbacks.monitor)));
  }
  const bool best_saved = s_.callbacks.save_best && epoch_callbacks_.save_best_epoch() > 0;
  if (best_saved) {
    // The folder holds the best epoch's model: evaluate that one.
    Model best = load_tfjs(s_.model_save_path);
    load_parameters(model_, copy_parameters(best));
    info(fmt::format("test evaluation of the best epoch's model (epoch {}, {} {:.4f})",
                     epoch_callbacks_.save_best_epoch(), monitor_name(s_.callbacks.monitor),
                     epoch_callbacks_.save_best_value()));
  }
  if (folder_ && data_.test.size() == 0) {
    info("no test images (" + data_dir_ + " has no test/ folder, and " + name(Setting::kTestSplit) +
         " is 0): no test evaluation");
    result.test = evaluate(model_, data_.test, kEvalBatchSize, cfg_.precision);
  } else {
    result.test = evaluate(model_, data_.test, kEvalBatchSize, cfg_.precision);
    observer_.on_evaluation(result.test);
  }
  if (!s_.model_save_path.empty()) {
    save_final_model(restored, best_saved, result.test);
  }
}

/// The model (unless the folder holds the best epoch's already) and its
/// history.json, under one lock.
void TrainJob::save_final_model(bool restored, bool best_saved, const EvalResult& test) {
  // One lock for the model and its history.json.
  const auto lock = lock_model_folder(s_.model_save_path, s_.checkpoint_dir, observer_);
  if (!best_saved) {
    save_tfjs(model_, s_.model_save_path, s_.save_format);
  }
  ordered_json record;
  if (epoch_callbacks_.active()) {
    record = epoch_callbacks_.state();
    if (best_saved) {
      record["saved_epoch"] = epoch_callbacks_.save_best_epoch();
    }
    record["restored_best_weights"] = restored;
  }
  const auto total = std::chrono::steady_clock::now() - job_start_;
  save_history(
      s_.model_save_path,
      {legacy_settings_json(run_), describe_device(device_), state_.history, test,
       std::chrono::duration<double>(total).count(), record,
       class_weights_.empty() ? ordered_json() : class_weights_json(class_weights_), data_record_});
  // A model that names its classes also gets Teachable Machine's file.
  const bool named = !teachable_machine_metadata(model_, "").is_null();
  info(fmt::format("saved {}/model.json, weights.bin{} and history.json{}", s_.model_save_path,
                   named ? std::string(", ") + kTmMetadataFile : "",
                   best_saved ? " (the model of epoch " +
                                    std::to_string(epoch_callbacks_.save_best_epoch()) + ")"
                              : ""));
  observer_.on_saved(Saved::kModel, s_.model_save_path);
}

}  // namespace

TrainJobResult run_train_job(const TrainSettings& s, TrainJobObserver& observer) {
  TrainJob job(s, observer);
  return job.run();
}

}  // namespace mnist
