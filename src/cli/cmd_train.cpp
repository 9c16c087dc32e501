// `mnist-train [train]`: binds the training flags, then runs the whole job:
// device check, save-path check, data, model, training, evaluation, saving.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>

#include <spdlog/spdlog.h>

#include <torch/utils.h>

#include "cli/app.hpp"
#include "cli/progress.hpp"
#include "cli/shared.hpp"
#include "cli/stop_signal.hpp"
#include "mnist/callbacks.hpp"
#include "mnist/checkpoint.hpp"
#include "mnist/csv_log.hpp"
#include "mnist/cuda_graph.hpp"
#include "mnist/data.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/history.hpp"
#include "mnist/idx.hpp"
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
                 "$MNIST_DATA_DIR, else data/mnist in the source tree)");
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
  return &app;
}

namespace {

CallbackConfig callback_config(const TrainOptions& o) {
  CallbackConfig c;
  c.monitor = *parse_monitor(o.monitor.value_or("val_loss"));
  c.early_stopping_patience = o.early_stopping_patience;
  c.min_delta = o.min_delta.value_or(c.min_delta);
  c.restore_best_weights = o.restore_best_weights;
  c.save_best = o.save_best;
  c.reduce_lr_patience = o.reduce_lr_patience;
  c.reduce_lr_factor = o.reduce_lr_factor.value_or(c.reduce_lr_factor);
  c.reduce_lr_min_delta = o.reduce_lr_min_delta.value_or(c.reduce_lr_min_delta);
  c.min_learning_rate = o.min_learning_rate.value_or(c.min_learning_rate);
  return c;
}

/// The data folder for `kind`: --data-dir, else the dataset's default, which
/// for Fashion-MNIST must exist (else a DataError saying how to get it).
std::string data_dir_for(const std::string& flag_value, DatasetKind kind) {
  if (!flag_value.empty()) {
    return flag_value;
  }
  const std::string dir = default_data_dir(kind);
  std::error_code ec;
  if (kind == DatasetKind::kFashionMnist && !std::filesystem::is_directory(dir, ec)) {
    throw DataError(dir +
                    ": Fashion-MNIST is not installed; install Debian's dataset-fashion-mnist "
                    "(sudo scripts/setup.sh --fashion-mnist, or apt-get install "
                    "dataset-fashion-mnist) or give --data-dir a folder with its four IDX files");
  }
  return dir;
}

}  // namespace

int run_train(const TrainOptions& o, const GlobalOptions& global, const std::string& program) {
  const auto job_start = std::chrono::steady_clock::now();
  // Fail fast: device, save and checkpoint paths, and the model to start
  // from are checked before any data is loaded.
  const c10::Device device = device_for_flag(o.gpu);
  if (!o.model_save_path.empty()) {
    check_writable_dir(o.model_save_path, "model folder", "--model-save-path");
  }
  // A training owns its checkpoint folder for the whole run: a second one
  // with the same --checkpoint-dir is refused (exit 4) before any work.
  std::optional<FolderLock> checkpoint_lock;
  if (!o.checkpoint_dir.empty()) {
    check_writable_dir(o.checkpoint_dir, "checkpoint folder", "--checkpoint-dir");
    checkpoint_lock.emplace(FolderLock::take(o.checkpoint_dir, "checkpoint folder"));
  }
  const DatasetKind dataset = *parse_dataset(o.dataset);
  const OptimizerKind optimizer_kind = *parse_optimizer(o.optimizer);
  std::optional<Checkpoint> checkpoint;
  if (o.resume) {
    const std::string latest = latest_checkpoint(o.checkpoint_dir);
    if (latest.empty()) {
      throw ConfigError(o.checkpoint_dir + ": no complete checkpoint to resume from");
    }
    checkpoint = load_checkpoint(latest);
  }
  // Opened before any data is read, so that a bad path fails fast; a resumed
  // run keeps the rows of the epochs its checkpoint holds.
  std::unique_ptr<CsvLog> csv;
  if (!o.csv_log.empty()) {
    csv = std::make_unique<CsvLog>(o.csv_log, o.resume, checkpoint ? checkpoint->state.epoch : 1,
                                   o.validation_split > 0);
  }
  const uint64_t seed = checkpoint ? checkpoint->settings["seed"].get<uint64_t>()
                        : o.seed   ? *o.seed
                                   : random_seed();
  const LabelSet given_labels = o.labels.empty() ? LabelSet() : parse_labels(o.labels);
  Model model =
      checkpoint ? checkpoint->model
      : !o.model_load_path.empty()
          ? load_tfjs(o.model_load_path)
          : Model(mnist_node_spec(o.dropout, given_labels.empty()
                                                 ? kNumClasses
                                                 : static_cast<int64_t>(given_labels.size())));
  // The classes it learns: --labels, else the ones the model knows.
  const int64_t outputs = model_outputs(model);
  const LabelSet model_labels = labels_of(model->spec().metadata, outputs);
  const LabelSet labels = given_labels.empty() ? model_labels : given_labels;
  const auto classes = static_cast<int64_t>(labels.size());
  if (o.replace_head) {
    torch::manual_seed(seed);  // the new head's weights come from the seed
    model = replace_head(model, classes);
    spdlog::info("new head: {} has {} units, for labels {}", model->spec().layers.back()->name,
                 classes, labels_text(labels));
  } else if (outputs < 2 || outputs > kNumClasses) {
    throw ConfigError((checkpoint ? checkpoint->path : o.model_load_path) +
                      ": the model's output is " +
                      shape_text(model->spec().layers.back()->output_shape) +
                      "; mnist-train trains classifiers of 2 to 10 outputs, one per label; add "
                      "--replace-head to give it a new last Dense layer of " +
                      std::to_string(classes) + " units");
  } else if (outputs != classes) {
    throw ConfigError((checkpoint ? checkpoint->path : o.model_load_path) + ": the model has " +
                      std::to_string(outputs) + " outputs (labels " + labels_text(model_labels) +
                      "), --labels " + o.labels + " needs " + std::to_string(classes) +
                      "; add --replace-head to give it a new last Dense layer of " +
                      std::to_string(classes) + " units");
  }
  if (!checkpoint) {  // the data it is trained on now
    model->set_metadata(with_labels(model->spec().metadata, dataset, labels));
  }
  for (const LayerPtr& l : model->spec().layers) {
    if (!l->training_problem.empty()) {
      throw ConfigError(o.model_load_path + ": layer " + l->name + " (" + l->class_name() +
                        "): " + l->training_problem +
                        "; predict, evaluate and convert use such a model as it is");
    }
  }
  if (!o.freeze_up_to.empty()) {
    const size_t frozen = freeze_up_to(model, o.freeze_up_to);
    spdlog::info("frozen: layers 0-{} ({} to {}); {} of {} parameters train", frozen - 1,
                 model->spec().layers.front()->name, model->spec().layers[frozen - 1]->name,
                 count_trainable_params(model), count_params(model));
  }
  // The saved model's format is checked now, not after the training.
  const SaveFormat save_format = save_format_of(o.quantize, o.weight_shard_size);
  if (const auto problem = save_format_problem(model, save_format)) {
    throw ConfigError(*problem);
  }
  const int threads = configure_cpu_threads(o.threads);
  if (const unsigned cores = std::thread::hardware_concurrency();
      cores > 0 && static_cast<unsigned>(threads) > cores) {
    spdlog::warn("--threads {} is more than the {} cores here: training is usually slower so",
                 threads, cores);
  }
  tune_allocator();

  ordered_json settings = to_json(o);
  if (checkpoint) {
    check_resumable(checkpoint->settings, settings, checkpoint->path);
  }
  settings["seed"] = seed;
  settings["threads"] = threads;
  const std::string data_dir = data_dir_for(o.data_dir, dataset);
  settings["data_dir"] = data_dir;
  spdlog::debug("settings: {}", settings.dump());

  const MnistData all_data = load_mnist(data_dir, o.train_limit, o.test_limit);
  // --labels: those records only, relabelled; the validation split is taken
  // from them, as fit({validationSplit}) on a filtered dataset would.
  const MnistData data = {select_labels(all_data.train, labels),
                          select_labels(all_data.test, labels)};
  for (const auto& [set, all, name] : {std::tuple{&data.train, &all_data.train, "training"},
                                       std::tuple{&data.test, &all_data.test, "test"}}) {
    if (all->size() == 0) {
      throw DataError(data_dir + ": the " + name + " images file holds no images");
    }
    if (set->size() == 0) {
      throw DataError(data_dir + ": none of the " + std::to_string(all->size()) + " " + name +
                      " images has one of the labels " + labels_text(labels));
    }
  }
  const Split split = split_validation(data.train, o.validation_split);
  spdlog::info("data: {} training, {} validation, {} test images from {}{}{}", split.train.size(),
               split.validation.size(), data.test.size(), data_dir,
               dataset == DatasetKind::kMnist ? "" : " (" + o.dataset + ")",
               labels == all_labels() ? "" : ", labels " + labels_text(labels));
  if (o.batch_size > split.train.size() && split.train.size() > 0) {
    spdlog::warn(
        "--batch-size {} is more than the {} training images: each epoch is one step of "
        "all of them",
        o.batch_size, split.train.size());
  }
  spdlog::info("device: {}; precision {}; seed {}", describe_device(device), o.precision, seed);

  torch::manual_seed(seed);
  if (o.model_load_path.empty() && !checkpoint) {
    model->reset_tfjs();  // TF.js initialisers, drawn from the seed
  } else {
    spdlog::info("starting from {}", checkpoint ? checkpoint->path : o.model_load_path);
  }
  model->to(device);
  to_channels_last(model);
  Optimizer optimizer(model->parameters(), optimizer_kind, o.learning_rate);
  if (const auto& saved = model->saved_optimizer; !checkpoint && saved.count > 0) {
    // includeOptimizer: go on from TF.js's optimizer state, as its fit() does
    // on a loaded model that is not compiled again.
    std::string why = o.fresh_optimizer ? "--fresh-optimizer"
                      : o.replace_head  ? "the model has a new head"
                                        : "";
    if (why.empty()) {
      std::vector<std::string> names;
      for (const auto& p : model->named_parameters()) {
        names.push_back(p.key());
      }
      why = load_tfjs_state(optimizer, names, saved.class_name, saved.config, saved.weights);
    }
    if (why.empty()) {
      spdlog::info("optimizer: {} goes on from the state saved with {} (step {}, {} weights)",
                   o.optimizer, o.model_load_path, optimizer.iterations(), saved.count);
    } else {
      spdlog::warn(
          "{}: its {} optimizer weights (saved with includeOptimizer) are not used ({}): the {} "
          "optimizer starts afresh",
          o.model_load_path, saved.count, why, o.optimizer);
    }
  }
  TrainingCallbacks epoch_callbacks(callback_config(o));
  std::vector<at::Tensor> best_weights;  // EarlyStopping's, with --restore-best-weights
  TrainState state;
  if (checkpoint) {
    if (checkpoint->optimizer != optimizer_kind) {
      throw ConfigError(checkpoint->path + " was made with --optimizer " +
                        optimizer_name(checkpoint->optimizer) + "; resume with the same flags");
    }
    optimizer.load_state(checkpoint->optimizer_slots, checkpoint->optimizer_iterations);
    optimizer.set_learning_rate(checkpoint->learning_rate);
    if (!checkpoint->callbacks.is_null()) {
      epoch_callbacks.load_state(checkpoint->callbacks);
    }
    best_weights = checkpoint->best_weights;
    state = checkpoint->state;
    restore_generators(*checkpoint);
    spdlog::info("resuming at epoch {}, batch {}", state.epoch, state.batch);
  }
  spdlog::info("optimizer: {}, learning rate {:g}", optimizer_name(optimizer_kind),
               optimizer.learning_rate());
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
  cfg.shuffle = o.shuffle;
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
  callbacks.on_epoch = [&](const EpochStats& s) {
    printer.on_epoch(s, cfg.epochs, o.reduce_lr_patience > 0);
    if (csv) {
      csv->write(s);
    }
  };
  callbacks.stop_training = [&](const EpochStats& s) {
    const EpochDecision d = epoch_callbacks.on_epoch_end(s, optimizer.learning_rate());
    if (d.keep_best_weights) {
      best_weights = copy_parameters(model);
    }
    if (d.save_best) {
      const auto lock = lock_model_folder(o.model_save_path, o.checkpoint_dir);
      save_tfjs(model, o.model_save_path, save_format);
      spdlog::info("epoch {}: {} = {:.4f}, the best so far: model saved to {}", s.epoch,
                   monitor_name(epoch_callbacks.config().monitor),
                   epoch_callbacks.save_best_value(), o.model_save_path);
    }
    if (d.new_learning_rate) {
      optimizer.set_learning_rate(*d.new_learning_rate);
      spdlog::info("epoch {}: {}", s.epoch, d.learning_rate_reason);
    }
    if (d.stop) {
      spdlog::info("{}", d.stop_reason);
    }
    return d.stop;
  };
  std::string last_checkpoint;
  if (!o.checkpoint_dir.empty()) {
    callbacks.on_checkpoint = [&](const TrainState& s) {
      try {
        last_checkpoint = save_checkpoint(
            o.checkpoint_dir, model, optimizer, s, settings, device,
            epoch_callbacks.active() ? epoch_callbacks.state() : ordered_json(), best_weights);
      } catch (const IoError& e) {
        // A run that cannot checkpoint stops (exit 4) rather than train on
        // unprotected; the last complete checkpoint is where to go on from.
        printer.finish_line();
        const std::string good = !last_checkpoint.empty() ? last_checkpoint
                                 : checkpoint             ? checkpoint->path
                                                          : "";
        throw IoError(std::string(e.what()) + "; training stopped " +
                      (s.batch == 0 ? "after epoch " + std::to_string(s.epoch - 1)
                                    : "in epoch " + std::to_string(s.epoch)) +
                      (good.empty() ? " with no checkpoint of this run"
                                    : "; resume from " + good + " once there is room, with: " +
                                          resume_command(program, o)));
      }
      spdlog::debug("checkpoint: {}", last_checkpoint);
    };
  }
  TrainOutcome outcome = TrainOutcome::kStoppedEarly;
  if (epoch_callbacks.stopped_epoch() > 0) {
    spdlog::info("the checkpoint's run had stopped early after epoch {}: nothing left to train",
                 epoch_callbacks.stopped_epoch());
  } else {
    outcome = train(model, optimizer, split.train, split.validation, cfg, state, callbacks);
  }
  if (outcome == TrainOutcome::kStopped) {
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

  // Keras 3's EarlyStopping.on_train_end: the best weights come back
  // whenever restore_best_weights is set, stopped early or not.
  if (o.restore_best_weights && !best_weights.empty()) {
    load_parameters(model, best_weights);
    spdlog::info("restored the weights of epoch {} (the best {})",
                 epoch_callbacks.early_stopping_best_epoch(),
                 monitor_name(epoch_callbacks.config().monitor));
  }
  const bool best_saved = o.save_best && epoch_callbacks.save_best_epoch() > 0;
  if (best_saved) {
    // The folder holds the best epoch's model: evaluate that one.
    Model best = load_tfjs(o.model_save_path);
    load_parameters(model, copy_parameters(best));
    spdlog::info("test evaluation of the best epoch's model (epoch {}, {} {:.4f})",
                 epoch_callbacks.save_best_epoch(), monitor_name(epoch_callbacks.config().monitor),
                 epoch_callbacks.save_best_value());
  }
  const EvalResult test = evaluate(model, data.test, kEvalBatchSize, cfg.precision);
  print_evaluation(test);
  if (!o.model_save_path.empty()) {
    const auto lock = lock_model_folder(o.model_save_path, o.checkpoint_dir);  // model + history
    if (!best_saved) {
      save_tfjs(model, o.model_save_path, save_format);
    }
    ordered_json record;
    if (epoch_callbacks.active()) {
      record = epoch_callbacks.state();
      if (best_saved) {
        record["saved_epoch"] = epoch_callbacks.save_best_epoch();
      }
      record["restored_best_weights"] = o.restore_best_weights && !best_weights.empty();
    }
    const auto total = std::chrono::steady_clock::now() - job_start;
    save_history(o.model_save_path, {settings, describe_device(device), state.history, test,
                                     std::chrono::duration<double>(total).count(), record});
    spdlog::info("saved {}/model.json, weights.bin and history.json{}", o.model_save_path,
                 best_saved ? " (the model of epoch " +
                                  std::to_string(epoch_callbacks.save_best_epoch()) + ")"
                            : "");
  }
  return 0;
}

}  // namespace mnist::cli
