// `mnist-train [train]`: binds the training flags, then runs the whole job:
// device check, save-path check, data, model, training, evaluation, saving.
#include <chrono>
#include <cstdio>
#include <optional>

#include <spdlog/spdlog.h>

#include <torch/utils.h>

#include "cli/app.hpp"
#include "cli/progress.hpp"
#include "cli/shared.hpp"
#include "cli/stop_signal.hpp"
#include "mnist/checkpoint.hpp"
#include "mnist/cuda_graph.hpp"
#include "mnist/data.hpp"
#include "mnist/history.hpp"
#include "mnist/tfjs_io.hpp"
#include "mnist/train.hpp"

using nlohmann::ordered_json;

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
  add_count_option(app, "--threads", o.threads, "CPU threads (0: one per core)", 0);
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
                 "$MNIST_DATA_DIR, else data/mnist in the source tree)");
  app.add_option("--model-load-path,--model_load_path", o.model_load_path,
                 "Start from this saved model (ours or one TF.js saved): its "
                 "architecture and weights; train --epochs more");
  app.add_option("--checkpoint-dir", o.checkpoint_dir,
                 "Write a checkpoint (model, optimizer, position, random state) "
                 "here after every epoch and on Ctrl-C");
  add_precision_option(app, o.precision);
  add_onednn_flag(app, o.onednn);
  app.add_flag("--resume", o.resume,
               "Continue from the newest checkpoint in --checkpoint-dir (same "
               "flags as the interrupted run)");
  return &app;
}

int run_train(const TrainOptions& o, const GlobalOptions& global, const std::string& program) {
  const auto job_start = std::chrono::steady_clock::now();
  // Fail fast: device, save and checkpoint paths, and the model to start
  // from are checked before any data is loaded.
  const c10::Device device = device_for_flag(o.gpu);
  if (!o.model_save_path.empty()) {
    check_writable_dir(o.model_save_path, "model folder", "--model-save-path");
  }
  if (!o.checkpoint_dir.empty()) {
    check_writable_dir(o.checkpoint_dir, "checkpoint folder", "--checkpoint-dir");
  }
  std::optional<Checkpoint> checkpoint;
  if (o.resume) {
    const std::string latest = latest_checkpoint(o.checkpoint_dir);
    if (latest.empty()) {
      throw ConfigError(o.checkpoint_dir + ": no complete checkpoint to resume from");
    }
    checkpoint = load_checkpoint(latest);
  }
  Model model = checkpoint                   ? checkpoint->model
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
  spdlog::info("data: {} training, {} validation, {} test images from {}", split.train.size(),
               split.validation.size(), data.test.size(), data_dir);
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
  apply_onednn_flag(o.onednn, device, cfg.precision);
  if (device.is_cuda()) {
    spdlog::info("training step: {}", !o.cuda_graphs ? "eager (--no-cuda-graphs)"
                                      : GraphedStep::available()
                                          ? "CUDA graph"
                                          : "eager (this build has no CUDA graph support)");
  }
  settings["precision"] = precision_name(cfg.precision);
  ProgressPrinter printer(stderr, !global.quiet && ProgressPrinter::is_terminal(stderr));
  const StopOnSignal stop_on_signal;
  TrainCallbacks callbacks;
  callbacks.stop = &stop_on_signal.flag();
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
      spdlog::warn(
          "interrupted: nothing was saved (train with --checkpoint-dir DIR to be "
          "able to resume)");
    } else {
      spdlog::warn("interrupted: checkpoint written to {}; resume with: {}", last_checkpoint,
                   resume_command(program, o));
    }
    return static_cast<int>(ExitCode::kInterrupted);
  }

  const EvalResult test = evaluate(model, data.test, kEvalBatchSize, cfg.precision);
  print_evaluation(test);
  if (!o.model_save_path.empty()) {
    save_tfjs(model, o.model_save_path);
    const auto total = std::chrono::steady_clock::now() - job_start;
    save_history(o.model_save_path, {settings, describe_device(device), state.history, test,
                                     std::chrono::duration<double>(total).count()});
    spdlog::info("saved {}/model.json, weights.bin and history.json", o.model_save_path);
  }
  return 0;
}

}  // namespace mnist::cli
