// The training job: its settings as JSON in both forms (the settings' own,
// and the command line's option keys that history.json and older
// checkpoints hold), resuming a checkpoint of the older form, messages that
// name settings through the observer, and train() refusing what it cannot
// train.
#include "mnist/train_job.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "mnist/checkpoint.hpp"
#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/tensorboard.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

using nlohmann::ordered_json;

/// Settings as checkpoints held them before TrainSettings' own form: the
/// command line's option JSON (state.json's "settings", copied from one the
/// earlier mnist-train wrote; its paths shortened).
constexpr const char* kOldCheckpointSettings = R"({"epochs":1,"batch_size":128,
  "validation_split":0.15,"seed":1,"threads":2,"train_limit":2000,"test_limit":500,
  "model_save_path":"","gpu":false,"cuda_graphs":true,"onednn_conv":true,
  "data_dir":"/data/mnist","model_load_path":"","freeze_up_to":"","labels":"",
  "replace_head":false,"fresh_optimizer":false,"checkpoint_dir":"/runs/ck",
  "precision":"fp32","dataset":"mnist","dropout":true,"shuffle":true,"optimizer":"rmsprop",
  "learning_rate":0.0,"early_stopping_patience":0,"monitor":"val_loss","min_delta":0.0,
  "restore_best_weights":false,"save_best":false,"reduce_lr_patience":0,"reduce_lr_factor":0.1,
  "reduce_lr_min_delta":0.0001,"min_learning_rate":0.0,"csv_log":"","quantize":"",
  "weight_shard_size":0})";

/// What a job reports.
class Recorder : public TrainJobObserver {
 public:
  void log(Level, const std::string& line) override { lines.push_back(line); }
  void on_epoch(const EpochStats& stats) override { epochs.push_back(stats.epoch); }
  void on_saved(Saved what, const std::string& path) override { saved.emplace_back(what, path); }

  bool logged(const std::string& start) const {
    for (const auto& line : lines) {
      if (line.rfind(start, 0) == 0) {
        return true;
      }
    }
    return false;
  }

  std::vector<std::string> lines;
  std::vector<int64_t> epochs;
  std::vector<std::pair<Saved, std::string>> saved;
};

/// A job of one epoch on 64 tiny training and 20 test images in `dir`.
TrainSettings small_job(const test::TempDir& dir) {
  const std::string data = dir.file("data");
  std::filesystem::create_directories(data);
  test::write_tiny_mnist(data, kTrainImagesFile, kTrainLabelsFile, 64);
  test::write_tiny_mnist(data, kTestImagesFile, kTestLabelsFile, 20);
  TrainSettings s;
  s.epochs = 1;
  s.batch_size = 32;
  s.seed = 5;
  s.data_dir = data;
  return s;
}

TrainSettings unusual_settings() {
  TrainSettings s;
  s.epochs = 3;
  s.batch_size = 64;
  s.validation_split = 0.2;
  s.seed = 9007199254740991ULL;
  s.threads = 2;
  s.train_limit = 500;
  s.model_save_path = "/m";
  s.onednn = false;
  s.labels = "5-9";
  s.checkpoint_dir = "/ck";
  s.resume = true;
  s.precision = Precision::kBFloat16;
  s.dataset = DatasetKind::kFashionMnist;
  s.shuffle = false;
  s.optimizer = OptimizerKind::kAdamax;
  s.learning_rate = 0.02;
  s.callbacks.monitor = Monitor::kValAcc;
  s.callbacks.early_stopping_patience = 3;
  s.callbacks.min_delta = 0.001;
  s.callbacks.save_best = true;
  s.callbacks.reduce_lr_factor = 0.5;
  s.csv_log = "/l.csv";
  s.save_format.storage = WeightStorage::kUint8;
  s.save_format.shard_bytes = 4194304;
  s.class_weight = "balanced";
  s.augment = "flip=vertical,contrast=0:0.3";
  s.augment_threads = 3;
  s.image_height = 48;
  s.image_width = 64;
  s.color_mode = "rgb";
  s.interpolation = "nearest";
  s.crop_to_aspect_ratio = true;
  s.test_split = 0.125;
  s.cache_dir = "/cache";
  s.skip_bad_images = true;
  s.tensorboard_dir = "/tb";
  s.tensorboard_update_freq = "batch";
  s.lr_schedule.kind = LrScheduleKind::kStep;
  s.lr_schedule.boundaries = {1.5, 3};
  s.lr_schedule.values = {0.01, 0.001, 0.0001};
  return s;
}

TEST(TrainJobTest, SettingsJsonRoundTrips) {
  const TrainSettings s = unusual_settings();
  const ordered_json json = to_json(s);
  EXPECT_EQ(json["format"], "mnist-train-settings");
  EXPECT_EQ(json["callbacks"]["monitor"], "val_acc");
  EXPECT_EQ(json["weight_storage"], "uint8");
  EXPECT_EQ(to_json(settings_from_json(json, "s")), json);
  EXPECT_EQ(to_json(settings_from_json(ordered_json::parse(json.dump()), "s")), json);
  EXPECT_EQ(to_json(checkpoint_settings(json, "s")), json);
  EXPECT_EQ(to_json(settings_from_json(to_json(TrainSettings{}), "s")), to_json(TrainSettings{}));

  ordered_json bad = json;
  bad["batch_size"] = "64";
  try {
    settings_from_json(bad, "ck/state.json");
    FAIL() << "a string batch size was taken";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(),
                 "ck/state.json: settings field \"batch_size\" must be a number, not \"64\"");
  }
  bad = json;
  bad["callbacks"]["monitor"] = "accuracy";
  EXPECT_THROW(settings_from_json(bad, "s"), FormatError);
  EXPECT_EQ(json["lr_schedule"]["kind"], "step");
  EXPECT_EQ(json["lr_schedule"]["values"], ordered_json::parse("[0.01, 0.001, 0.0001]"));
  bad = json;
  bad["lr_schedule"]["kind"] = "linear";
  EXPECT_THROW(settings_from_json(bad, "s"), FormatError);
  bad = json;
  bad["lr_schedule"]["boundaries"] = ordered_json::parse("[1, \"2\"]");
  try {
    settings_from_json(bad, "ck/state.json");
    FAIL() << "a string boundary was taken";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(),
                 "ck/state.json (lr_schedule): settings field \"boundaries\" must be an array of "
                 "numbers, not [1,\"2\"]");
  }
  EXPECT_THROW(settings_from_json(ordered_json::array(), "s"), FormatError);
  // A "format" or "version" of another type is not ours: a FormatError, not
  // a JSON type error.
  for (const char* key : {"format", "version"}) {
    for (const ordered_json& value :
         {ordered_json(), ordered_json("1"), ordered_json(1.5), ordered_json::object()}) {
      bad = json;
      bad[key] = value;
      EXPECT_THROW(settings_from_json(bad, "s"), FormatError) << key << " " << value.dump();
    }
  }
}

/// history.json keeps the keys (and order) it has always had.
TEST(TrainJobTest, LegacyFormHasTheOptionKeys) {
  const ordered_json json = legacy_settings_json(TrainSettings{});
  std::vector<std::string> keys;
  for (const auto& item : json.items()) {
    keys.push_back(item.key());
  }
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "epochs",
                      "batch_size",
                      "validation_split",
                      "seed",
                      "threads",
                      "train_limit",
                      "test_limit",
                      "model_save_path",
                      "gpu",
                      "cuda_graphs",
                      "onednn_conv",
                      "data_dir",
                      "model_load_path",
                      "freeze_up_to",
                      "labels",
                      "replace_head",
                      "fresh_optimizer",
                      "checkpoint_dir",
                      "precision",
                      "dataset",
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
                      "csv_log",
                      "quantize",
                      "weight_shard_size",
                      "image_height",
                      "image_width",
                      "color_mode",
                      "interpolation",
                      "crop_to_aspect_ratio",
                      "test_split",
                      "cache_dir",
                      "skip_bad_images",
                      "class_weight",
                      "augment",
                      "augment_threads",
                      "tensorboard_dir",
                      "tensorboard_update_freq",
                      "lr_schedule",
                  }));
  EXPECT_TRUE(json["seed"].is_null());
  EXPECT_EQ(json["quantize"], "");
  const TrainSettings s = unusual_settings();
  EXPECT_EQ(legacy_settings_json(settings_from_legacy_json(legacy_settings_json(s), "s")),
            legacy_settings_json(s));
  EXPECT_EQ(legacy_settings_json(s)["quantize"], "uint8");
}

TEST(TrainJobTest, ReadsTheOldCheckpointForm) {
  const ordered_json old = ordered_json::parse(kOldCheckpointSettings);
  const TrainSettings s = checkpoint_settings(old, "ck");
  EXPECT_EQ(s.seed, 1U);
  EXPECT_EQ(s.threads, 2);
  EXPECT_EQ(s.train_limit, 2000);
  EXPECT_EQ(s.test_limit, 500);
  EXPECT_TRUE(s.onednn);
  EXPECT_EQ(s.checkpoint_dir, "/runs/ck");
  EXPECT_EQ(s.optimizer, OptimizerKind::kRmsProp);
  EXPECT_EQ(s.callbacks.monitor, Monitor::kValLoss);
  EXPECT_DOUBLE_EQ(s.callbacks.reduce_lr_min_delta, 1e-4);
  EXPECT_EQ(s.save_format.storage, WeightStorage::kFloat32);
  // Nothing lost; the keys that came later added with their defaults.
  ordered_json now = old;
  now["image_height"] = 0;
  now["image_width"] = 0;
  now["color_mode"] = "";
  now["interpolation"] = "bilinear";
  now["crop_to_aspect_ratio"] = false;
  now["test_split"] = 0.0;
  now["cache_dir"] = "";
  now["skip_bad_images"] = false;
  now["class_weight"] = "";
  now["augment"] = "";
  now["augment_threads"] = 1;
  now["tensorboard_dir"] = "";
  now["tensorboard_update_freq"] = "epoch";
  now["lr_schedule"] = legacy_settings_json(TrainSettings{})["lr_schedule"];
  EXPECT_EQ(legacy_settings_json(s), now);
  EXPECT_EQ(now["lr_schedule"]["kind"], "constant");
  EXPECT_EQ(s.class_weight, "");
  // A key a checkpoint predates keeps its default.
  ordered_json older = old;
  older.erase("optimizer");
  older.erase("dropout");
  EXPECT_EQ(checkpoint_settings(older, "ck").optimizer, OptimizerKind::kRmsProp);
  EXPECT_NO_THROW(check_resumable(older, now, "ck"));
  now["class_weight"] = "balanced";
  EXPECT_THROW(check_resumable(old, now, "ck"), ConfigError);
  now["class_weight"] = "";
  now["augment"] = "rotation=0.1,fill_mode=reflect,fill_value=0,interpolation=bilinear";
  try {
    check_resumable(old, now, "ck");  // a checkpoint from before --augment: none
    FAIL() << "another augmentation was accepted";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "ck was made with augment = \"\", this run has "
                 "\"rotation=0.1,fill_mode=reflect,fill_value=0,interpolation=bilinear\"");
  }
  now["augment"] = "";
  EXPECT_NO_THROW(check_resumable(old, now, "ck"));
  ordered_json other = old;
  other["batch_size"] = 64;
  try {
    check_resumable(old, other, "ck");
    FAIL() << "another batch size was accepted";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "ck was made with batch_size = 128, this run has 64");
    EXPECT_EQ(e.remedy(), Remedy::kSameSettings);
  }
}

/// A checkpoint whose state.json holds the settings in the older form (the
/// command line's option JSON) resumes, and the job's next checkpoint is of
/// the new form.
TEST(TrainJobTest, ResumesACheckpointOfTheOldForm) {
  test::TempDir dir;
  TrainSettings s = small_job(dir);
  s.checkpoint_dir = dir.file("ck");
  Recorder first;
  EXPECT_EQ(run_train_job(s, first).outcome, TrainOutcome::kFinished);
  const std::string checkpoint = latest_checkpoint(s.checkpoint_dir);
  ASSERT_FALSE(checkpoint.empty());
  ASSERT_EQ(first.saved.size(), 1U);
  EXPECT_EQ(first.saved[0], std::pair(Saved::kCheckpoint, checkpoint));

  // What the earlier mnist-train wrote there, for this run.
  const std::string state_file = checkpoint + "/state.json";
  ordered_json state = read_json_file(state_file);
  EXPECT_EQ(state["settings"]["format"], "mnist-train-settings");
  ordered_json old = ordered_json::parse(kOldCheckpointSettings);
  old["batch_size"] = 32;
  old["seed"] = 5;
  old["train_limit"] = 0;
  old["test_limit"] = 0;
  old["data_dir"] = s.data_dir;
  old["checkpoint_dir"] = s.checkpoint_dir;
  state["settings"] = old;
  write_file_atomic(state_file, state.dump(2) + "\n");

  s.epochs = 2;
  s.resume = true;
  s.seed.reset();  // the checkpoint's
  TrainSettings other = s;
  other.batch_size = 16;
  Recorder refused;
  try {
    run_train_job(other, refused);
    FAIL() << "resumed with another batch size";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              checkpoint + " was made with batch_size = 32, this run has 16");
    EXPECT_EQ(e.remedy(), Remedy::kSameSettings);
  }

  Recorder resumed;
  EXPECT_EQ(run_train_job(s, resumed).outcome, TrainOutcome::kFinished);
  EXPECT_TRUE(resumed.logged("resuming at epoch 2, batch 0")) << resumed.lines.size();
  EXPECT_TRUE(resumed.logged("device: CPU")) << resumed.lines.size();
  EXPECT_EQ(resumed.epochs, std::vector<int64_t>{2});
  const Checkpoint next = load_checkpoint(latest_checkpoint(s.checkpoint_dir));
  EXPECT_EQ(next.state.epoch, 3);
  EXPECT_EQ(next.settings["format"], "mnist-train-settings");
  EXPECT_EQ(checkpoint_settings(next.settings, "next").seed, 5U);
}

/// The model folder gets the model and history.json, whose settings are of
/// the option keys, with the seed, threads and data folder the job used.
TEST(TrainJobTest, SavesTheModelAndHistory) {
  test::TempDir dir;
  TrainSettings s = small_job(dir);
  s.model_save_path = dir.file("model");
  Recorder recorder;
  const TrainJobResult result = run_train_job(s, recorder);
  EXPECT_EQ(result.outcome, TrainOutcome::kFinished);
  EXPECT_EQ(result.test.count, 20);
  ASSERT_EQ(recorder.saved.size(), 1U);
  EXPECT_EQ(recorder.saved[0], std::pair(Saved::kModel, s.model_save_path));
  const ordered_json history = read_json_file(s.model_save_path + "/history.json");
  EXPECT_EQ(history["settings"]["seed"], 5);
  EXPECT_EQ(history["settings"]["data_dir"], s.data_dir);
  EXPECT_GT(history["settings"]["threads"].get<int>(), 0);
  EXPECT_TRUE(history["settings"].contains("onednn_conv"));
  EXPECT_TRUE(std::filesystem::exists(s.model_save_path + "/weights.bin"));
}

/// --tensorboard-dir in the model folder with --save-best: the job does not
/// lock that folder twice (a save would wait on its own lock), and each
/// epoch's events are in the files: train/ the file version, 2 batches'
/// batch_loss and batch_accuracy and 3 epoch_* values per epoch;
/// validation/ 2 evaluation_* and 2 epoch_* values per epoch.
TEST(TrainJobTest, TensorBoardInTheModelFolder) {
  test::TempDir dir;
  TrainSettings s = small_job(dir);
  s.epochs = 2;
  s.model_save_path = dir.file("model");
  s.tensorboard_dir = s.model_save_path;
  s.tensorboard_update_freq = "batch";
  s.callbacks.save_best = true;
  Recorder recorder;
  EXPECT_EQ(run_train_job(s, recorder).outcome, TrainOutcome::kFinished);
  EXPECT_TRUE(recorder.logged("TensorBoard: " + s.tensorboard_dir +
                              "/train and validation, batch and epoch figures"));
  const auto train = event_files(s.tensorboard_dir + "/train");
  const auto validation = event_files(s.tensorboard_dir + "/validation");
  ASSERT_EQ(train.size(), 1U);
  ASSERT_EQ(validation.size(), 1U);
  EXPECT_EQ(read_tfrecords(train[0]).records.size(), 1U + 2 * (2 * 2 + 3));
  EXPECT_EQ(read_tfrecords(validation[0]).records.size(), 1U + 2 * 4);
  EXPECT_TRUE(std::filesystem::exists(s.model_save_path + "/model.json"));

  s.tensorboard_update_freq = "step";
  EXPECT_THROW(run_train_job(s, recorder), ConfigError);
}

/// --class-weight balanced: computed from the training split (64 images,
/// labels 0..9 in turn, less the last 15%: 54, so 6 of classes 0-3 and 5 of
/// the others), logged per class, recorded in history.json; none: no record.
TEST(TrainJobTest, ClassWeightsAreLoggedAndRecorded) {
  test::TempDir dir;
  TrainSettings s = small_job(dir);
  s.model_save_path = dir.file("model");
  Recorder plain;
  run_train_job(s, plain);
  EXPECT_FALSE(read_json_file(s.model_save_path + "/history.json").contains("class_weights"));
  EXPECT_FALSE(plain.logged("class weights"));

  s.class_weight = "balanced";
  Recorder recorder;
  run_train_job(s, recorder);
  EXPECT_TRUE(
      recorder.logged("class weights, balanced over the 54 training images: 0: 0.9, 1: "
                      "0.9, 2: 0.9, 3: 0.9, 4: 1.08, "))
      << recorder.lines.size();
  const ordered_json history = read_json_file(s.model_save_path + "/history.json");
  EXPECT_EQ(history["settings"]["class_weight"], "balanced");
  ASSERT_EQ(history["class_weights"].size(), 10U);
  EXPECT_DOUBLE_EQ(history["class_weights"]["0"].get<double>(), 54.0 / 60.0);
  EXPECT_DOUBLE_EQ(history["class_weights"]["9"].get<double>(), 54.0 / 50.0);

  // A file keyed by index or name; its errors name it.
  const std::string file = dir.file("cw.json");
  write_file_atomic(file, R"({"0":1,"1":1,"2":1,"3":1,"4":1,"5":1,"6":1,"7":1,"8":1,"9":3})");
  s.class_weight = file;
  Recorder from_file;
  run_train_job(s, from_file);
  EXPECT_TRUE(from_file.logged("class weights from " + file + ": 0: 1, ")) << file;
  EXPECT_EQ(read_json_file(s.model_save_path + "/history.json")["class_weights"]["9"], 3.0);
  write_file_atomic(file, R"({"0": 1})");
  Recorder refused;
  EXPECT_THROW(run_train_job(s, refused), ConfigError);
}

/// Messages name settings as the observer does (by default, by their
/// field), and the model is checked before any data is read.
TEST(TrainJobTest, NamesSettingsThroughTheObserver) {
  test::TempDir dir;
  save_tfjs(Model(mnist_node_spec()), dir.file("ten"));
  TrainSettings s;
  s.model_load_path = dir.file("ten");
  s.labels = "0-4";
  s.data_dir = "/nonexistent";
  TrainJobObserver plain;
  try {
    run_train_job(s, plain);
    FAIL() << "a model of 10 outputs trained on 5 labels";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              s.model_load_path +
                  ": the model has 10 outputs (labels 0-9), labels 0-4 needs 5; add "
                  "replace_head to give it a new last Dense layer of 5 units");
  }
  struct Flags : TrainJobObserver {
    std::string name_of(Setting setting) const override { return "--" + setting_field(setting); }
  } flags;
  try {
    run_train_job(s, flags);
    FAIL() << "a model of 10 outputs trained on 5 labels";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--labels 0-4 needs 5; add --replace_head"),
              std::string::npos)
        << e.what();
  }
}

TEST(TrainJobTest, FolderProblemsCarryTheirRemedy) {
  TrainSettings s;
  s.model_save_path = "/proc/mnist-model";
  TrainJobObserver observer;
  try {
    run_train_job(s, observer);
    FAIL() << "saved into /proc";
  } catch (const IoError& e) {
    EXPECT_EQ(e.remedy(), Remedy::kOtherModelFolder);
  }
  s.model_save_path.clear();
  s.checkpoint_dir = "/proc/mnist-ck";
  try {
    run_train_job(s, observer);
    FAIL() << "checkpointed into /proc";
  } catch (const IoError& e) {
    EXPECT_EQ(e.remedy(), Remedy::kOtherCheckpointFolder);
  }
}

/// train() itself refuses a layer whose TF.js config it would not apply,
/// whoever calls it.
TEST(TrainJobTest, TrainRefusesALayerItCannotTrain) {
  ModelSpec spec = mnist_node_spec();
  spec.layers.back()->training_problem =
      "field \"kernel_constraint\" (MaxNorm) is not applied in training by mnist-train";
  Model model(spec);
  const std::string expected =
      "layer dense_Dense2 (Dense): field \"kernel_constraint\" (MaxNorm) is not applied in "
      "training by mnist-train; predict, evaluate and convert use such a model as it is";
  EXPECT_EQ(training_problem(model), expected);
  EXPECT_EQ(training_problem(Model(mnist_node_spec())), "");
  Optimizer optimizer(model->parameters(), OptimizerKind::kRmsProp);
  TrainState state;
  const Dataset data{at::rand({8, 1, 28, 28}), at::arange(8, at::kLong).remainder(10)};
  try {
    train(model, optimizer, data, Dataset{}, TrainConfig{}, state, {});
    FAIL() << "trained a layer with a MaxNorm constraint";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), expected);
  }
}

}  // namespace
}  // namespace mnist
