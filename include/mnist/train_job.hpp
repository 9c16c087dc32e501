// A whole training job, as `mnist-train [train]` runs it: the start model
// (a checkpoint, a saved model, or mnist-node's), its labels and head, the
// optimizer and its saved state, the data, train() with the Keras-style
// callbacks acted on (save the best, set the rate, stop, restore the best),
// the test evaluation, the final save and history.json, and checkpoints.
// It decides and reports through TrainJobObserver; it never prints and
// never exits, and names settings only through TrainJobObserver::name_of.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "mnist/callbacks.hpp"
#include "mnist/data.hpp"
#include "mnist/device.hpp"
#include "mnist/evaluate.hpp"
#include "mnist/image_folder.hpp"
#include "mnist/lr_schedule.hpp"
#include "mnist/optimizer.hpp"
#include "mnist/tfjs_io.hpp"
#include "mnist/train.hpp"

namespace mnist {

/// What a training job is asked to do, with mnist-node's defaults.
struct TrainSettings {
  int64_t epochs = 20;  ///< in all: a resumed run continues its count
  int64_t batch_size = 128;
  double validation_split = 0.15;  ///< the last part of the training images
  std::optional<uint64_t> seed;    ///< unset: random (resumed: the checkpoint's)
  int threads = 0;                 ///< 0: one per core
  int64_t train_limit = 0;         ///< 0: all records
  int64_t test_limit = 0;          ///< 0: all records
  std::string model_save_path;     ///< empty: no saving
  bool gpu = false;
  bool cuda_graphs = true;
  bool onednn = true;            ///< false: libtorch's convolutions and pooling only
  std::string data_dir;          ///< empty: default_data_dir(dataset)
  std::string model_load_path;   ///< start from this saved model
  std::string freeze_up_to;      ///< empty: none; else a layer name or 0-based index
  std::string labels;            ///< parse_labels's text; empty: all, or the model's
  bool replace_head = false;     ///< a new last Dense layer, one unit per label
  bool fresh_optimizer = false;  ///< ignore the loaded model's optimizer state
  std::string checkpoint_dir;    ///< empty: no checkpoints
  bool resume = false;           ///< from the newest checkpoint in checkpoint_dir
  Precision precision = Precision::kFloat32;
  DatasetKind dataset = DatasetKind::kMnist;
  bool dropout = true;  ///< mnist-node's model with its Dropout layers
  bool shuffle = true;
  OptimizerKind optimizer = OptimizerKind::kRmsProp;
  double learning_rate = 0;  ///< 0: the optimizer's TF.js default
  CallbackConfig callbacks;
  std::string csv_log;     ///< empty: none
  SaveFormat save_format;  ///< of the saved model (not of checkpoints)
  // A folder of images (image_folder.hpp) as the data: how its images are
  // read, as Keras's image_dataset_from_directory's arguments say.
  int64_t image_height = 0;  ///< 0: the model's input size, else the images' own
  int64_t image_width = 0;
  std::string color_mode;  ///< "grayscale", "rgb"; "": the model's, else the images'
  std::string interpolation = "bilinear";
  bool crop_to_aspect_ratio = false;
  double test_split = 0;         ///< of a folder without test/: cut before the validation part
  std::string cache_dir;         ///< "": default_cache_dir()
  bool skip_bad_images = false;  ///< train without images that cannot be read
  /// Class weights (class_weight.hpp): "" none; "balanced" from the training
  /// split's labels; else the path of a JSON file of them.
  std::string class_weight;
  /// Augmentation (augment.hpp): parse_augment_spec's text; "" none. Its
  /// random draws come from the seed.
  std::string augment;
  int augment_threads = 1;  ///< CPU threads that prepare augmented batches
  /// TensorBoard's event files (tensorboard.hpp): "" none; else the folder
  /// that gets train/ and validation/.
  std::string tensorboard_dir;
  std::string tensorboard_update_freq = "epoch";  ///< "epoch" or "batch", as Keras's update_freq
  /// The learning-rate schedule (lr_schedule.hpp); constant: the rate as it
  /// is (and as ReduceLROnPlateau sets it).
  LrSchedule lr_schedule;
};

/// The settings' JSON form, which checkpoints store: every field by its
/// name, enums by their names, {"format": "mnist-train-settings",
/// "version": 1} first. from_json throws FormatError naming `origin`.
nlohmann::ordered_json to_json(const TrainSettings& settings);
TrainSettings settings_from_json(const nlohmann::ordered_json& json, const std::string& origin);

/// The settings as history.json records them, and as checkpoints before
/// the settings' own form stored them: the keys (and their order) of the
/// command line's options, "onednn_conv" for onednn, the labels' text, the
/// callbacks' fields flat, "quantize" "" for float32.
nlohmann::ordered_json legacy_settings_json(const TrainSettings& settings);
/// The inverse, for such a checkpoint; a missing key keeps its default.
/// Throws FormatError naming `origin`.
TrainSettings settings_from_legacy_json(const nlohmann::ordered_json& json,
                                        const std::string& origin);
/// A checkpoint's settings, in either form.
TrainSettings checkpoint_settings(const nlohmann::ordered_json& json, const std::string& origin);

/// Throws ConfigError (Remedy::kSameSettings) unless the settings a
/// checkpoint was made with (`saved`, legacy_settings_json's form) agree
/// with this run's (`now`) on what a resumed run must keep (batch size,
/// validation split, train limit, seed, dataset, labels, dropout, shuffle,
/// optimizer and rate, the callbacks, the class weights, the augmentation, the
/// learning-rate schedule); a key missing from
/// `saved` holds its default; `now` without a seed takes the checkpoint's. `path` names the
/// checkpoint.
void check_resumable(const nlohmann::ordered_json& saved,
                     const nlohmann::ordered_json& now,
                     const std::string& path);

/// A random seed for a job without one (53 bits: exact in JSON).
uint64_t random_seed();

/// The settings a job's messages may point to; the caller names them
/// (TrainJobObserver::name_of: the CLI as its flags).
enum class Setting {
  kBatchSize,
  kThreads,
  kLabels,
  kReplaceHead,
  kFreshOptimizer,
  kCheckpointDir,
  kOptimizer,
  kPrecision,
  kDataDir,
  kNoCudaGraphs,  ///< cuda_graphs off
  kNoOnednn,      ///< onednn off
  kImageSize,     ///< image_height, image_width
  kColorMode,
  kTestSplit,
  kValidationSplit,
};
/// The setting's TrainSettings field ("batch_size", "cuda_graphs off").
std::string setting_field(Setting setting);

/// What a job saved.
enum class Saved { kBestModel, kModel, kCheckpoint };

/// How a job reports; every method does nothing by default.
class TrainJobObserver {
 public:
  enum class Level { kDebug, kInfo, kWarn };
  virtual ~TrainJobObserver() = default;
  /// One log line.
  virtual void log(Level level, const std::string& line);
  /// How messages name `setting` (default: setting_field).
  virtual std::string name_of(Setting setting) const;
  /// The command that resumes this job from its checkpoint folder ("": not
  /// known; messages then leave it out).
  virtual std::string resume_command() const;
  /// The model as it will train, before the first epoch.
  virtual void on_model(const Model& model);
  /// Called once, just before training starts: a flag that, once true,
  /// stops training after the current batch (null, the default: none).
  virtual const std::atomic<bool>* stop_flag();
  /// While a folder's images are decoded (not when its cache is opened).
  virtual void on_decode(const DecodeProgress& progress);
  virtual void on_batch(const BatchProgress& progress);
  virtual void on_epoch(const EpochStats& stats);
  /// Before the job reports an interruption or throws out of training (a
  /// checkpoint it could not write): a partly drawn progress line should end.
  virtual void on_break();
  virtual void on_evaluation(const EvalResult& test);
  /// `path`: the model folder, or the checkpoint folder.
  virtual void on_saved(Saved what, const std::string& path);
};

/// How a job ended.
struct TrainJobResult {
  /// kStopped: interrupted through stop_flag() (resumable from
  /// last_checkpoint); kStoppedEarly also when a resumed checkpoint's run
  /// had stopped early (nothing trained).
  TrainOutcome outcome = TrainOutcome::kFinished;
  std::string last_checkpoint;  ///< "" when none was written
  EvalResult test;              ///< the test evaluation (not when interrupted)
};

/// Runs the job. Checks the device, the folders and the start model before
/// any data is read; holds the checkpoint folder's lock (FolderLock) for the
/// whole run and the model folder's around each save. Throws Error
/// subclasses: ConfigError (Remedy::kSameSettings for a checkpoint of other
/// settings), DataError, FormatError, IoError (Remedy::kOtherModelFolder or
/// kOtherCheckpointFolder for a folder that cannot be written; a checkpoint
/// that cannot be written stops training with an IoError naming the last
/// complete one and observer.resume_command()), DeviceError.
TrainJobResult run_train_job(const TrainSettings& settings, TrainJobObserver& observer);

}  // namespace mnist
