// `mnist-train [train]`: binds the training flags, maps them onto the core's
// TrainSettings and runs the job (train_job.hpp), printing what it reports.
#include <atomic>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "cli/app.hpp"
#include "cli/progress.hpp"
#include "cli/shared.hpp"
#include "cli/stop_signal.hpp"
#include "mnist/image.hpp"
#include "mnist/train_job.hpp"

namespace mnist::cli {

CLI::App* add_train_options(CLI::App& app, TrainOptions& o) {
  add_count_option(app, "--epochs", o.epochs, "Training epochs", 1);
  add_count_option(app, "--batch-size,--batch_size", o.batch_size, "Images per training step", 1);
  app.add_option("--validation-split", o.validation_split,
                 "Fraction of the training images, taken from the END before "
                 "shuffling, used for validation (as TF.js's fit)")
      ->capture_default_str()
      ->check(fraction_below_one());
  app.add_option("--seed", o.seed,
                 "Random seed for initialisation, shuffling and dropout "
                 "(default: random; the seed used is logged and saved)");
  add_count_option(app, "--threads", o.threads, "CPU threads (0: one per core)", 0, kMaxThreads);
  add_count_option(app, "--train-limit", o.train_limit,
                   "Use only the first N training records (0: all; for smoke runs)", 0);
  add_count_option(app, "--test-limit", o.test_limit, "Use only the first N test records (0: all)",
                   0);
  app.add_option("--model-save-path,--model_save_path", o.model_save_path,
                 "Folder to write model.json, weights.bin and history.json to "
                 "(created if missing; default: don't save)");
  app.add_flag("--gpu", o.gpu, "Train on CUDA (needs a CUDA-enabled libtorch)");
  app.add_flag_callback(
      "--no-cuda-graphs", [&o] { o.cuda_graphs = false; },
      "With --gpu: launch every training step's kernels one by one instead of replaying "
      "them as one captured CUDA graph");
  app.add_option("--data-dir", o.data_dir,
                 "Folder with the four MNIST IDX files, raw or .gz (default: "
                 "$MNIST_DATA_DIR, else data/mnist in the source tree); or a folder of your "
                 "images, one subfolder per class (DIR/<class>/*.png|jpg|jpeg, as Keras's "
                 "image_dataset_from_directory), optionally in train/, validation/ (or val/) and "
                 "test/ subfolders");
  app.add_option("--image-size", o.image_size,
                 "Folder datasets: resize the images to H,W (default: the model's input size, "
                 "else the images' own, which must then be one size)")
      ->delimiter(',')
      ->expected(2)
      ->type_name("H,W")
      ->check(CLI::Range(int64_t{1}, kMaxImageSide));
  app.add_option("--color-mode", o.color_mode,
                 "Folder datasets: grayscale or rgb, as Keras's color_mode (default: the "
                 "model's, else grayscale when every image is grayscale, else rgb)")
      ->check(CLI::IsMember({"grayscale", "rgb"}));
  app.add_option("--interpolation", o.interpolation,
                 "Folder datasets: how images are resized, as Keras's tf.image.resize does it: "
                 "bilinear or nearest")
      ->capture_default_str()
      ->check(CLI::IsMember({"bilinear", "nearest"}));
  app.add_flag("--crop-to-aspect-ratio", o.crop_to_aspect_ratio,
               "Folder datasets: crop each image's centre to the --image-size aspect ratio "
               "before resizing, instead of stretching it (Keras's crop_to_aspect_ratio)");
  app.add_option("--test-split", o.test_split,
                 "A folder dataset without a test/ subfolder: the fraction of its shuffled "
                 "files kept for the test evaluation (cut just before the validation part; "
                 "default 0: no test evaluation)")
      ->check(fraction_below_one());
  app.add_option("--cache-dir", o.cache_dir,
                 "Folder datasets: where the decoded images are cached, so that the next run "
                 "starts at once (default: $XDG_CACHE_HOME/mnist-train/images, else "
                 "~/.cache/mnist-train/images)");
  app.add_flag("--skip-bad-images", o.skip_bad_images,
               "Folder datasets: train without the images that cannot be read (listed in the "
               "log and in history.json) instead of stopping");
  app.add_option("--model-load-path,--model_load_path", o.model_load_path,
                 "Start from this saved model (ours or one TF.js saved): its "
                 "architecture and weights; train --epochs more");
  app.add_option("--freeze-up-to", o.freeze_up_to,
                 "Freeze the layers from the first to LAYER (a layer name, or a 0-based index "
                 "as in TF.js's model.layers[i]): their weights stay as they are, and the saved "
                 "model.json marks them trainable: false, as Keras and TF.js do")
      ->type_name("LAYER");
  app.add_option("--labels", o.labels,
                 "Train and test on these digits only (a range, 0-4, or a list, 5,6,7,8,9): "
                 "relabelled 0..K-1 in the order given for a K-unit softmax; the saved model "
                 "names them (userDefinedMetadata), so predict, evaluate and the page print the "
                 "real digits (default: all ten, or the label set of --model-load-path's model)")
      ->type_name("LABELS")
      ->check(
          [](const std::string& text) {
            try {
              parse_labels(text);
              return std::string();
            } catch (const ConfigError& e) {
              return std::string(e.what());
            }
          },
          "0-9 as a range or a list");
  app.add_flag("--replace-head", o.replace_head,
               "With --model-load-path: replace the model's last Dense layer by a new one, "
               "one unit per label (--labels), Glorot-normal kernel and zero bias, for "
               "fine-tuning on other classes (tfjs-examples' mnist-transfer-cnn)");
  app.add_flag("--fresh-optimizer", o.fresh_optimizer,
               "With --model-load-path: start the optimizer afresh even when the model holds "
               "the state of the same optimizer (TF.js's includeOptimizer), as model.compile() "
               "again would");
  app.add_option("--checkpoint-dir", o.checkpoint_dir,
                 "Write a checkpoint (model, optimizer, position, random state) "
                 "here after every epoch and on Ctrl-C");
  add_precision_option(app, o.precision);
  add_onednn_flag(app, o.onednn);
  app.add_flag("--resume", o.resume,
               "Continue from the newest checkpoint in --checkpoint-dir (same "
               "flags as the interrupted run)");
  app.add_option("--dataset", o.dataset,
                 "mnist, or fashion-mnist (Zalando's clothing images: install Debian's "
                 "dataset-fashion-mnist with scripts/setup.sh --fashion-mnist, or give "
                 "--data-dir); the saved model names its classes")
      ->capture_default_str()
      ->check(CLI::IsMember({"mnist", "fashion-mnist"}));
  app.add_flag_callback(
      "--no-dropout", [&o] { o.dropout = false; },
      "Train mnist-node's model without its two Dropout layers (the chapter's exercise 3)");
  app.add_flag_callback(
      "--no-shuffle", [&o] { o.shuffle = false; },
      "Keep the training images in file order every epoch (fit's shuffle: false)");
  app.add_option("--optimizer", o.optimizer,
                 "What model.compile({optimizer}) takes in TF.js, with TF.js's settings: "
                 "rmsprop (lr 0.001, decay 0.9, epsilon 1e-7), adam (0.001, 0.9, 0.999, 1e-7), "
                 "sgd (0.01), adagrad (0.01, initial accumulator 0.1), adadelta (1, rho 0.95, "
                 "1e-7), adamax (0.002, 0.9, 0.999, 1e-7)")
      ->capture_default_str()
      ->check(CLI::IsMember(optimizer_names()));
  app.add_option("--learning-rate", o.learning_rate,
                 "Learning rate (default: the optimizer's TF.js default, above)")
      ->check(real_number(is_positive, "a number above 0", ">0"));
  add_count_option(app, "--early-stopping-patience", o.early_stopping_patience,
                   "Keras EarlyStopping: stop when --monitor has not improved by more than "
                   "--min-delta for N epochs (0: off)",
                   0);
  app.add_option("--monitor", o.monitor,
                 "The figure early stopping, --reduce-lr-patience and --save-best watch: "
                 "val_loss (default), val_acc, loss or acc (the acc ones are maximised)")
      ->check(CLI::IsMember({"val_loss", "val_acc", "loss", "acc"}));
  app.add_option("--min-delta", o.min_delta,
                 "Early stopping: the smallest change that counts as an improvement (default 0)")
      ->check(real_number(is_non_negative, "a number of at least 0", ">=0"));
  app.add_flag("--restore-best-weights", o.restore_best_weights,
               "Early stopping: end training with the weights of the best epoch (Keras 3: also "
               "when no early stop happened)");
  app.add_flag("--save-best", o.save_best,
               "Keras ModelCheckpoint(save_best_only): --model-save-path holds the model of the "
               "epoch with the best --monitor, saved when it improves; the test evaluation is of "
               "that model and history.json names its epoch");
  add_count_option(app, "--reduce-lr-patience", o.reduce_lr_patience,
                   "Keras ReduceLROnPlateau: multiply the learning rate by --reduce-lr-factor "
                   "when --monitor has not improved for N epochs (0: off)",
                   0);
  app.add_option("--reduce-lr-factor", o.reduce_lr_factor,
                 "ReduceLROnPlateau's factor, 0 < F < 1 (default 0.1)")
      ->check(real_number(is_between_0_and_1, "a number between 0 and 1 (exclusive)", "0<x<1"));
  app.add_option("--reduce-lr-min-delta", o.reduce_lr_min_delta,
                 "ReduceLROnPlateau's smallest improvement (default 1e-4, as Keras)")
      ->check(real_number(is_non_negative, "a number of at least 0", ">=0"));
  app.add_option("--min-learning-rate", o.min_learning_rate,
                 "ReduceLROnPlateau never goes below this rate (default 0)")
      ->check(real_number(is_non_negative, "a number of at least 0", ">=0"));
  app.add_option("--csv-log", o.csv_log,
                 "Keras CSVLogger: write epoch (0-based), acc, loss, lr, val_acc, val_loss, one "
                 "row per epoch, to FILE (replaced; appended to with --resume)");
  add_save_format_options(app, o.quantize, o.weight_shard_size);
  app.add_option("--class-weight", o.class_weight,
                 "Weigh each training image's loss by its class, as TF.js's fit({classWeight}): "
                 "'balanced' (scikit-learn's and Keras users' n / (classes * count), from the "
                 "training images left after --validation-split), or a JSON file "
                 "{\"class\": weight, ...} keyed by class index (\"0\", as TF.js's map) or "
                 "class name, every class given a weight >= 0. The mean is over the batch, as "
                 "TF.js's; accuracy and validation figures are not weighted (default: none)")
      ->type_name("balanced|FILE")
      ->check(
          [](const std::string& value) {
            return value.empty() ? std::string("needs 'balanced' or a file") : std::string();
          },
          "balanced or a file");
  app.add_option("--augment", o.augment,
                 "Augment the training images on CPU threads with Keras 3's random "
                 "preprocessing layers, applied in this order, each as Keras computes it: "
                 "flip=horizontal|vertical|horizontal_and_vertical (RandomFlip), rotation=F "
                 "(RandomRotation, a fraction of a full turn), zoom=F and zoom_width=F "
                 "(RandomZoom's height_factor, width_factor; positive zooms out; no zoom_width: "
                 "the height's), translation=F or translation_height=F,translation_width=F "
                 "(RandomTranslation, fractions of the size), contrast=F (RandomContrast), "
                 "brightness=F (RandomBrightness, value_range 0..1); F is a number f (-f..f) or "
                 "a range lo:hi, as Keras's factor and its tuple; fill_mode=reflect|wrap|"
                 "constant|nearest (default reflect), fill_value=V (default 0), "
                 "interpolation=bilinear|nearest (default bilinear). 'default' is "
                 "flip=horizontal,rotation=0.1,zoom=0.1. Seeded by --seed; --resume keeps it; "
                 "nothing enters model.json (default: none)")
      ->type_name("SPEC")
      ->check(
          [](const std::string& value) {
            return value.empty() ? std::string("needs a spec, e.g. 'default'") : std::string();
          },
          "a spec");
  add_count_option(app, "--augment-threads", o.augment_threads,
                   "CPU threads that prepare augmented batches beside training (with --augment)", 1,
                   kMaxThreads);
  app.add_option("--tensorboard-dir", o.tensorboard_dir,
                 "Keras's TensorBoard callback: event files TensorBoard reads, in DIR/train "
                 "(epoch_loss, epoch_accuracy, epoch_learning_rate) and DIR/validation "
                 "(epoch_loss, epoch_accuracy), flushed after every epoch (earlier runs' files "
                 "there are replaced; --resume goes on from its checkpoint)")
      ->type_name("DIR")
      ->check(
          [](const std::string& value) {
            return value.empty() ? std::string("needs a folder") : std::string();
          },
          "a folder");
  app.add_option("--tensorboard-update-freq", o.tensorboard_update_freq,
                 "epoch, or batch: also batch_loss and batch_accuracy after every batch, at the "
                 "run's batch count (default epoch, as Keras)")
      ->check(CLI::IsMember({"epoch", "batch"}));
  app.add_option("--lr-schedule", o.lr_schedule,
                 "The learning rate of every step, as Keras 3's schedules "
                 "and fastai compute it: constant; exponential (ExponentialDecay: the rate times "
                 "--lr-decay-rate every --lr-decay-epochs); step (PiecewiseConstantDecay: "
                 "--lr-values, changing after each of --lr-boundaries); cosine (CosineDecay "
                 "from --learning-rate to --lr-alpha times it at the end of training); onecycle "
                 "(fastai's fit_one_cycle, --learning-rate as lr_max). Not with "
                 "--reduce-lr-patience; --resume keeps it")
      ->capture_default_str()
      ->check(CLI::IsMember(lr_schedule_names()));
  const auto positive = real_number(is_positive, "a number above 0", ">0");
  app.add_option("--warmup-epochs", o.warmup_epochs,
                 "constant and cosine: rise linearly from 0 to --learning-rate over the first E "
                 "epochs' steps (CosineDecay's warmup_steps, initial_learning_rate 0, "
                 "warmup_target the rate; default 0)")
      ->check(real_number(is_non_negative, "a number of at least 0", ">=0"));
  app.add_option("--lr-decay-rate", o.lr_decay_rate,
                 "exponential: ExponentialDecay's decay_rate R (required)")
      ->check(positive);
  app.add_option("--lr-decay-epochs", o.lr_decay_epochs,
                 "exponential: ExponentialDecay's decay_steps, in epochs (required)")
      ->check(positive);
  app.add_flag("--lr-staircase", o.lr_staircase,
               "exponential: decay at once every --lr-decay-epochs (ExponentialDecay's staircase)");
  app.add_option(
         "--lr-boundaries", o.lr_boundaries,
         "step: the epochs E1,E2,... after which the rate changes (PiecewiseConstantDecay's "
         "boundaries, in epochs; the rate changes after the first step past each)")
      ->delimiter(',')
      ->type_name("E1,E2,...")
      ->check(positive);
  app.add_option("--lr-values", o.lr_values,
                 "step: the rates R0,R1,... before the first boundary, between them and after the "
                 "last (PiecewiseConstantDecay's values: one more than --lr-boundaries)")
      ->delimiter(',')
      ->type_name("R0,R1,...")
      ->check(positive);
  app.add_option("--lr-alpha", o.lr_alpha,
                 "cosine: CosineDecay's alpha, the last rate as a fraction of --learning-rate "
                 "(default 0)")
      ->check(real_number(
          +[](double x) { return x >= 0 && x <= 1; }, "a number from 0 to 1", "0<=x<=1"));
  app.add_option("--lr-pct-start", o.lr_pct_start,
                 "onecycle: the fraction of the steps over which the rate rises (fastai's "
                 "pct_start, default 0.25)")
      ->check(real_number(is_between_0_and_1, "a number between 0 and 1 (exclusive)", "0<x<1"));
  app.add_option("--lr-div", o.lr_div,
                 "onecycle: the first rate is --learning-rate / D (fastai's div, default 25)")
      ->check(positive);
  app.add_option("--lr-div-final", o.lr_div_final,
                 "onecycle: the last rate is --learning-rate / D (fastai's div_final, default "
                 "1e5)")
      ->check(positive);
  return &app;
}

namespace {

/// The console side of a training job: its log lines through spdlog, the
/// progress on stderr, the summary and the evaluation on stdout, Ctrl-C
/// from training's start, and the settings named as this CLI's flags.
class Console : public TrainJobObserver {
 public:
  Console(const TrainOptions& o, const GlobalOptions& global, std::string program)
      : o_(o),
        program_(std::move(program)),
        quiet_(global.quiet),
        printer_(stderr, !global.quiet && ProgressPrinter::is_terminal(stderr)) {}

  void log(Level level, const std::string& line) override {
    switch (level) {
      case Level::kDebug:
        spdlog::debug("{}", line);
        break;
      case Level::kInfo:
        spdlog::info("{}", line);
        break;
      case Level::kWarn:
        spdlog::warn("{}", line);
        break;
    }
  }

  std::string name_of(Setting setting) const override {
    static constexpr const char* kFlags[] = {
        // in Setting's order
        "--batch-size",     "--threads",    "--labels",     "--replace-head", "--fresh-optimizer",
        "--checkpoint-dir", "--optimizer",  "--precision",  "--data-dir",     "--no-cuda-graphs",
        "--no-onednn",      "--image-size", "--color-mode", "--test-split",   "--validation-split"};
    return kFlags[static_cast<size_t>(setting)];
  }

  std::string resume_command() const override { return cli::resume_command(program_, o_); }

  void on_model(const Model& model) override {
    if (!quiet_) {
      std::fputs(summary_text(model).c_str(), stdout);
      std::fflush(stdout);
    }
  }

  const std::atomic<bool>* stop_flag() override { return &stop_on_signal_.emplace().flag(); }
  void on_decode(const DecodeProgress& p) override { printer_.on_decode(p); }
  void on_batch(const BatchProgress& p) override { printer_.on_batch(p); }
  void on_epoch(const EpochStats& s) override {
    printer_.on_epoch(s, o_.epochs,
                      o_.reduce_lr_patience > 0 || o_.lr_schedule != "constant" ||
                          o_.warmup_epochs.value_or(0) > 0);
  }
  void on_break() override { printer_.finish_line(); }
  void on_evaluation(const EvalResult& test) override { print_evaluation(test); }

 private:
  const TrainOptions& o_;
  std::string program_;
  bool quiet_;
  ProgressPrinter printer_;
  std::optional<StopOnSignal> stop_on_signal_;
};

}  // namespace

int run_train(const TrainOptions& o, const GlobalOptions& global, const std::string& program) {
  device_for_flag(o.gpu);  // a CUDA that cannot be used is "--gpu: why"
  Console console(o, global, program);
  const TrainJobResult result = run_train_job(train_settings(o), console);
  return result.outcome == TrainOutcome::kStopped ? static_cast<int>(ExitCode::kInterrupted) : 0;
}

}  // namespace mnist::cli
