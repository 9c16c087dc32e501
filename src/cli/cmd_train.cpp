// `mnist-train [train]`: binds the training flags, then runs the whole job:
// device check, save-path check, data, model, training, evaluation, saving.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "cli/app.hpp"
#include "cli/model_check.hpp"
#include "cli/progress.hpp"
#include "mnist/checkpoint.hpp"
#include "mnist/data.hpp"
#include "mnist/device.hpp"
#include "mnist/error.hpp"
#include "mnist/evaluate.hpp"
#include "mnist/model.hpp"
#include "mnist/tfjs_io.hpp"
#include "mnist/train.hpp"

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace mnist::cli {

namespace {

constexpr int64_t kEvalBatch = 256;

/// An integer flag's lower bound, with a plain message ("must be at least
/// 1, got 0") instead of CLI11's range text.
CLI::Validator at_least(long long min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        try {
          size_t used = 0;
          const long long value = std::stoll(text, &used);
          if (used == text.size() && value >= min) {
            return {};
          }
        } catch (const std::exception&) {
        }
        return "must be an integer of at least " + std::to_string(min) +
               ", got '" + text + "'";
      },
      ">=" + std::to_string(min));
}

/// The validation split: 0 <= split < 1.
CLI::Validator fraction_below_one() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        try {
          size_t used = 0;
          const double value = std::stod(text, &used);
          if (used == text.size() && value >= 0.0 && value < 1.0) {
            return {};
          }
        } catch (const std::exception&) {
        }
        return "must be a number with 0 <= split < 1 (e.g. 0.15), got '" +
               text + "'";
      },
      "0<=x<1");
}

uint64_t random_seed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32 | rd()) & ((uint64_t{1} << 53) - 1);  // exact in JSON
}

/// Set by SIGINT/SIGTERM while training; a second signal ends the process.
std::atomic<bool> g_stop{false};

void on_train_signal(int signum) {
  if (g_stop.exchange(true)) {
    std::signal(signum, SIG_DFL);
    std::raise(signum);
  }
}

/// Installs the stop handler for the life of a training run.
class StopOnSignal {
 public:
  StopOnSignal() {
    g_stop = false;
    old_int_ = std::signal(SIGINT, on_train_signal);
    old_term_ = std::signal(SIGTERM, on_train_signal);
  }
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  ~StopOnSignal() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int) = SIG_DFL;
  void (*old_term_)(int) = SIG_DFL;
};

/// Settings that must not change between a run and its resumption.
constexpr const char* kResumeKeys[] = {"batch_size", "validation_split", "train_limit",
                                       "seed"};

void check_resumable(const ordered_json& saved, const ordered_json& now, const std::string& path) {
  for (const char* key : kResumeKeys) {
    if (key == std::string("seed") && now[key].is_null()) {
      continue;  // no --seed: take the checkpoint's
    }
    if (saved.value(key, ordered_json()) != now[key]) {
      throw ConfigError(path + " was made with " + key + " = " +
                        saved.value(key, ordered_json()).dump() + ", this run has " +
                        now[key].dump() + "; resume with the same flags");
    }
  }
}

}  // namespace

void validate(const TrainOptions& o) {
  if (!(o.validation_split >= 0.0 && o.validation_split < 1.0)) {
    throw ConfigError(fmt::format(
        "--validation-split {} is out of range (expected 0 <= split < 1, "
        "e.g. 0.15)", o.validation_split));
  }
}

ordered_json to_json(const TrainOptions& o) {
  return {{"epochs", o.epochs},
          {"batch_size", o.batch_size},
          {"validation_split", o.validation_split},
          {"seed", o.seed ? ordered_json(*o.seed) : ordered_json(nullptr)},
          {"threads", o.threads},
          {"train_limit", o.train_limit},
          {"test_limit", o.test_limit},
          {"model_save_path", o.model_save_path},
          {"gpu", o.gpu},
          {"cuda_graphs", o.cuda_graphs},
          {"onednn_conv", o.onednn_conv},
          {"data_dir", o.data_dir},
          {"model_load_path", o.model_load_path},
          {"checkpoint_dir", o.checkpoint_dir},
          {"precision", o.precision}};
}

CLI::App* add_train_options(CLI::App& app, TrainOptions& o) {
  app.add_option("--epochs", o.epochs, "Training epochs")
      ->capture_default_str()
      ->check(at_least(1));
  app.add_option("--batch-size,--batch_size", o.batch_size, "Images per training step")
      ->capture_default_str()
      ->check(at_least(1));
  app.add_option("--validation-split", o.validation_split,
                 "Fraction of the training images, taken from the END before "
                 "shuffling, used for validation (as TF.js's fit)")
      ->capture_default_str()
      ->check(fraction_below_one());
  app.add_option("--seed", o.seed,
                 "Random seed for initialisation, shuffling and dropout "
                 "(default: random; the seed used is logged and saved)");
  app.add_option("--threads", o.threads, "CPU threads (0: one per core)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--train-limit", o.train_limit,
                 "Use only the first N training records (0: all; for smoke runs)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--test-limit", o.test_limit,
                 "Use only the first N test records (0: all)")
      ->capture_default_str()
      ->check(at_least(0));
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
                 "$MNIST_DATA_DIR, else data/mnist in the source tree)");
  app.add_option("--model-load-path,--model_load_path", o.model_load_path,
                 "Start from this saved model (ours or one TF.js saved): its "
                 "architecture and weights; train --epochs more");
  app.add_option("--checkpoint-dir", o.checkpoint_dir,
                 "Write a checkpoint (model, optimizer, position, random state) "
                 "here after every epoch and on Ctrl-C");
  add_precision_option(app, o.precision);
  add_conv_flag(app, o.onednn_conv);
  app.add_flag("--resume", o.resume,
               "Continue from the newest checkpoint in --checkpoint-dir (same "
               "flags as the interrupted run)");
  return &app;
}

int run_train(const TrainOptions& o, const GlobalOptions& global, const std::string& argv_text) {
  const auto job_start = std::chrono::steady_clock::now();
  if (o.resume && o.checkpoint_dir.empty()) {
    throw ConfigError("--resume needs --checkpoint-dir (the folder the interrupted run wrote)");
  }
  if (o.resume && !o.model_load_path.empty()) {
    throw ConfigError("--resume and --model-load-path cannot be combined (the checkpoint "
                      "holds the model)");
  }
  // Fail fast: device, save and checkpoint paths, and the model to start
  // from are checked before any data is loaded.
  const c10::Device device = select_device(o.gpu);
  if (!o.model_save_path.empty()) {
    ensure_writable_dir(o.model_save_path);
  }
  if (!o.checkpoint_dir.empty()) {
    ensure_writable_dir(o.checkpoint_dir);
  }
  std::optional<Checkpoint> checkpoint;
  if (o.resume) {
    const std::string latest = latest_checkpoint(o.checkpoint_dir);
    if (latest.empty()) {
      throw ConfigError(o.checkpoint_dir + ": no complete checkpoint to resume from");
    }
    checkpoint = load_checkpoint(latest);
  }
  Model model = checkpoint                      ? checkpoint->model
                : !o.model_load_path.empty() ? load_tfjs(o.model_load_path)
                                              : Model(mnist_node_spec());
  const int threads = configure_cpu_threads(o.threads);
  tune_allocator();

  ordered_json settings = to_json(o);
  if (checkpoint) {
    check_resumable(checkpoint->settings, settings, checkpoint->path);
  }
  const uint64_t seed = checkpoint ? checkpoint->settings["seed"].get<uint64_t>()
                        : o.seed   ? *o.seed
                                   : random_seed();
  settings["seed"] = seed;
  settings["threads"] = threads;
  const std::string data_dir = o.data_dir.empty() ? default_data_dir() : o.data_dir;
  settings["data_dir"] = data_dir;
  spdlog::debug("settings: {}", settings.dump());

  const MnistData data = load_mnist(data_dir, o.train_limit, o.test_limit);
  const Split split = split_validation(data.train, o.validation_split);
  spdlog::info("data: {} training, {} validation, {} test images from {}",
               split.train.size(), split.validation.size(), data.test.size(), data_dir);
  spdlog::info("device: {}; precision {}; seed {}", describe_device(device), o.precision, seed);

  torch::manual_seed(seed);
  if (o.model_load_path.empty() && !checkpoint) {
    model->reset_tfjs();  // TF.js initialisers, drawn from the seed
  } else {
    spdlog::info("starting from {}", checkpoint ? checkpoint->path : o.model_load_path);
  }
  model->to(device);
  to_channels_last(model);
  RmsProp optimizer(model->parameters(), RmsPropOptions{});
  TrainState state;
  if (checkpoint) {
    optimizer.load_mean_squares(checkpoint->mean_squares);
    state = checkpoint->state;
    restore_generators(*checkpoint);
    spdlog::info("resuming at epoch {}, batch {}", state.epoch, state.batch);
  }
  if (!global.quiet) {
    std::fputs(summary_text(model).c_str(), stdout);
    std::fflush(stdout);
  }

  TrainConfig cfg;
  cfg.epochs = o.epochs;  // in all: a resumed run continues its count; a loaded
                          // model (--model-load-path) trains this many more
  cfg.batch_size = o.batch_size;
  cfg.device = device;
  cfg.precision = resolve_precision(o.precision, device);
  cfg.cuda_graphs = o.cuda_graphs;
  apply_conv_flag(o.onednn_conv, device, cfg.precision);
  if (device.is_cuda()) {
    spdlog::info("training step: {}", !o.cuda_graphs ? "eager (--no-cuda-graphs)"
                                      : GraphedStep::available()
                                          ? "CUDA graph"
                                          : "eager (this build has no CUDA graph support)");
  }
  settings["precision"] = precision_name(cfg.precision);
  ProgressPrinter printer(stderr, !global.quiet && ProgressPrinter::is_terminal(stderr));
  StopOnSignal stop_on_signal;
  TrainCallbacks callbacks;
  callbacks.stop = &g_stop;
  callbacks.on_batch = [&](const BatchProgress& p) { printer.on_batch(p); };
  callbacks.on_epoch = [&](const EpochStats& s) { printer.on_epoch(s, cfg.epochs); };
  std::string last_checkpoint;
  if (!o.checkpoint_dir.empty()) {
    callbacks.on_checkpoint = [&](const TrainState& s) {
      last_checkpoint = save_checkpoint(o.checkpoint_dir, model, optimizer, s, settings, device);
      spdlog::debug("checkpoint: {}", last_checkpoint);
    };
  }
  if (train(model, optimizer, split.train, split.validation, cfg, state, callbacks) ==
      TrainOutcome::kStopped) {
    printer.finish_line();
    if (last_checkpoint.empty()) {
      spdlog::warn("interrupted: nothing was saved (train with --checkpoint-dir DIR to be "
                   "able to resume)");
    } else {
      const bool has_resume = argv_text.find(" --resume") != std::string::npos;
      spdlog::warn("interrupted: checkpoint written to {}; resume with: {}{}", last_checkpoint,
                   argv_text, has_resume ? "" : " --resume");
    }
    return static_cast<int>(ExitCode::kInterrupted);
  }
  const std::vector<EpochStats>& history = state.history;

  const EvalResult test = evaluate(model, data.test, kEvalBatch, cfg.precision);
  std::printf("Evaluation result:\n  Loss = %.3f; Accuracy = %.3f\n", test.loss,
              test.accuracy);
  std::fflush(stdout);

  if (!o.model_save_path.empty()) {
    save_tfjs(model, o.model_save_path);
    ordered_json doc;
    doc["generatedBy"] = generated_by();
    doc["settings"] = settings;
    doc["device"] = describe_device(device);
    doc["epochs"] = history_json(history);
    doc["test"] = {{"loss", test.loss}, {"acc", test.accuracy}, {"count", test.count}};
    doc["total_seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - job_start).count();
    write_file_atomic((fs::path(o.model_save_path) / "history.json").string(),
                      doc.dump(2) + "\n");
    spdlog::info("saved {}/model.json, weights.bin and history.json", o.model_save_path);
  }
  return 0;
}

}  // namespace mnist::cli
