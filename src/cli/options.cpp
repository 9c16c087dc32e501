// Cross-field checks of the options, the core settings they map onto (and
// their JSON form, as history.json records it), and the command that
// resumes a run.
#include "cli/options.hpp"

#include <initializer_list>
#include <utility>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "mnist/error.hpp"

namespace mnist::cli {

namespace {

/// `text` as one word of a POSIX shell command.
std::string shell_word(const std::string& text) {
  const bool plain = !text.empty() && text.find_first_not_of(
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789_-+=/.,:@%") == std::string::npos;
  if (plain) {
    return text;
  }
  std::string quoted = "'";
  for (const char c : text) {
    quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return quoted + "'";
}

std::string number_text(double v) { return fmt::format("{}", v); }

std::string numbers_text(const std::vector<double>& v) {
  return fmt::format("{}", fmt::join(v, ","));
}

/// The schedule's settings named as this CLI's flags.
LrScheduleNames lr_schedule_flags() {
  LrScheduleNames n;
  n.schedule = "--lr-schedule";
  n.warmup_epochs = "--warmup-epochs";
  n.decay_rate = "--lr-decay-rate";
  n.decay_epochs = "--lr-decay-epochs";
  n.staircase = "--lr-staircase";
  n.boundaries = "--lr-boundaries";
  n.values = "--lr-values";
  n.alpha = "--lr-alpha";
  n.pct_start = "--lr-pct-start";
  n.div = "--lr-div";
  n.div_final = "--lr-div-final";
  n.learning_rate = "--learning-rate";
  n.reduce_lr_patience = "--reduce-lr-patience";
  return n;
}

/// A schedule's flag given for another schedule (even at its default
/// value, which the core cannot tell from not given).
void check_lr_schedule_flags(const TrainOptions& o) {
  const std::string& k = o.lr_schedule;
  const auto only = [&](bool given, const char* flag, std::initializer_list<const char*> owners) {
    bool owned = false;
    std::string names;
    for (const char* owner : owners) {
      owned = owned || k == owner;
      names += std::string(names.empty() ? "" : " or ") + owner;
    }
    if (given && !owned) {
      throw ConfigError(std::string(flag) + " is for --lr-schedule " + names + ", not " + k);
    }
  };
  only(o.warmup_epochs.has_value(), "--warmup-epochs", {"constant", "cosine"});
  only(o.lr_decay_rate.has_value(), "--lr-decay-rate", {"exponential"});
  only(o.lr_decay_epochs.has_value(), "--lr-decay-epochs", {"exponential"});
  only(o.lr_staircase, "--lr-staircase", {"exponential"});
  only(!o.lr_boundaries.empty(), "--lr-boundaries", {"step"});
  only(!o.lr_values.empty(), "--lr-values", {"step"});
  only(o.lr_alpha.has_value(), "--lr-alpha", {"cosine"});
  only(o.lr_pct_start.has_value(), "--lr-pct-start", {"onecycle"});
  only(o.lr_div.has_value(), "--lr-div", {"onecycle"});
  only(o.lr_div_final.has_value(), "--lr-div-final", {"onecycle"});
}

}  // namespace

void validate(const TrainOptions& o) {
  const bool early_stopping = o.early_stopping_patience > 0;
  const bool reduce_lr = o.reduce_lr_patience > 0;
  if (o.monitor && !early_stopping && !reduce_lr && !o.save_best) {
    throw ConfigError(
        "--monitor is used by --early-stopping-patience, --reduce-lr-patience and --save-best; "
        "give one of them");
  }
  if (o.min_delta && !early_stopping) {
    throw ConfigError("--min-delta needs --early-stopping-patience N (N > 0)");
  }
  if (o.restore_best_weights && !early_stopping) {
    throw ConfigError("--restore-best-weights needs --early-stopping-patience N (N > 0)");
  }
  if (!reduce_lr) {
    for (const auto& [given, flag] :
         {std::pair{o.reduce_lr_factor.has_value(), "--reduce-lr-factor"},
          {o.reduce_lr_min_delta.has_value(), "--reduce-lr-min-delta"},
          {o.min_learning_rate.has_value(), "--min-learning-rate"}}) {
      if (given) {
        throw ConfigError(std::string(flag) + " needs --reduce-lr-patience N (N > 0)");
      }
    }
  }
  if (o.tensorboard_update_freq != TrainOptions{}.tensorboard_update_freq &&
      o.tensorboard_dir.empty()) {
    throw ConfigError("--tensorboard-update-freq needs --tensorboard-dir (the folder of the logs)");
  }
  if (o.save_best && o.model_save_path.empty()) {
    throw ConfigError("--save-best needs --model-save-path (the folder that keeps the best model)");
  }
  const std::string monitor = o.monitor.value_or("val_loss");
  if ((early_stopping || reduce_lr || o.save_best) && monitor.rfind("val_", 0) == 0 &&
      o.validation_split == 0) {
    throw ConfigError("--monitor " + monitor +
                      " needs a validation set: --validation-split must be above 0 (or "
                      "monitor loss or acc)");
  }
  if (!o.dropout && !o.model_load_path.empty()) {
    throw ConfigError(
        "--no-dropout builds mnist-node's model without its Dropout layers; it cannot change a "
        "model given with --model-load-path");
  }
  if (o.replace_head && o.model_load_path.empty()) {
    throw ConfigError(
        "--replace-head gives a model loaded with --model-load-path a new last Dense layer; a "
        "new model gets one sized to --labels anyway");
  }
  if (o.fresh_optimizer && o.model_load_path.empty()) {
    throw ConfigError(
        "--fresh-optimizer is about the optimizer state a model given with --model-load-path "
        "may hold; a new model's optimizer starts afresh anyway");
  }
  if (o.resume && o.checkpoint_dir.empty()) {
    throw ConfigError("--resume needs --checkpoint-dir (the folder the interrupted run wrote)");
  }
  if (o.resume && !o.model_load_path.empty()) {
    throw ConfigError(
        "--resume and --model-load-path cannot be combined (the checkpoint holds the model)");
  }
  check_lr_schedule_flags(o);
  check_lr_schedule(train_settings(o).lr_schedule, o.epochs, o.learning_rate > 0, reduce_lr,
                    lr_schedule_flags());
}

TrainSettings train_settings(const TrainOptions& o) {
  TrainSettings s;
  s.epochs = o.epochs;
  s.batch_size = o.batch_size;
  s.validation_split = o.validation_split;
  s.seed = o.seed;
  s.threads = o.threads;
  s.train_limit = o.train_limit;
  s.test_limit = o.test_limit;
  s.model_save_path = o.model_save_path;
  s.gpu = o.gpu;
  s.cuda_graphs = o.cuda_graphs;
  s.onednn = o.onednn;
  s.data_dir = o.data_dir;
  s.model_load_path = o.model_load_path;
  s.freeze_up_to = o.freeze_up_to;
  s.labels = o.labels;
  s.replace_head = o.replace_head;
  s.fresh_optimizer = o.fresh_optimizer;
  s.checkpoint_dir = o.checkpoint_dir;
  s.resume = o.resume;
  s.precision = o.precision == "bf16" ? Precision::kBFloat16 : Precision::kFloat32;
  s.dataset = parse_dataset(o.dataset).value();
  s.dropout = o.dropout;
  s.shuffle = o.shuffle;
  s.optimizer = parse_optimizer(o.optimizer).value();
  s.learning_rate = o.learning_rate;
  CallbackConfig& c = s.callbacks;
  c.monitor = parse_monitor(o.monitor.value_or("val_loss")).value();
  c.early_stopping_patience = o.early_stopping_patience;
  c.min_delta = o.min_delta.value_or(c.min_delta);
  c.restore_best_weights = o.restore_best_weights;
  c.save_best = o.save_best;
  c.reduce_lr_patience = o.reduce_lr_patience;
  c.reduce_lr_factor = o.reduce_lr_factor.value_or(c.reduce_lr_factor);
  c.reduce_lr_min_delta = o.reduce_lr_min_delta.value_or(c.reduce_lr_min_delta);
  c.min_learning_rate = o.min_learning_rate.value_or(c.min_learning_rate);
  s.csv_log = o.csv_log;
  s.save_format.storage =
      o.quantize.empty() ? WeightStorage::kFloat32 : parse_storage(o.quantize).value();
  s.save_format.shard_bytes = o.weight_shard_size;
  if (o.image_size.size() == 2) {
    s.image_height = o.image_size[0];
    s.image_width = o.image_size[1];
  }
  s.color_mode = o.color_mode;
  s.interpolation = o.interpolation;
  s.crop_to_aspect_ratio = o.crop_to_aspect_ratio;
  s.test_split = o.test_split;
  s.cache_dir = o.cache_dir;
  s.skip_bad_images = o.skip_bad_images;
  s.class_weight = o.class_weight;
  s.augment = o.augment;
  s.augment_threads = o.augment_threads;
  s.tensorboard_dir = o.tensorboard_dir;
  s.tensorboard_update_freq = o.tensorboard_update_freq;
  LrSchedule& l = s.lr_schedule;
  l.kind = parse_lr_schedule(o.lr_schedule).value();
  l.warmup_epochs = o.warmup_epochs.value_or(l.warmup_epochs);
  l.decay_rate = o.lr_decay_rate.value_or(l.decay_rate);
  l.decay_epochs = o.lr_decay_epochs.value_or(l.decay_epochs);
  l.staircase = o.lr_staircase;
  l.boundaries = o.lr_boundaries;
  l.values = o.lr_values;
  l.alpha = o.lr_alpha.value_or(l.alpha);
  l.pct_start = o.lr_pct_start.value_or(l.pct_start);
  l.div = o.lr_div.value_or(l.div);
  l.div_final = o.lr_div_final.value_or(l.div_final);
  return s;
}

nlohmann::ordered_json to_json(const TrainOptions& o) {
  return legacy_settings_json(train_settings(o));
}

nlohmann::ordered_json to_json(const ServeOptions& o) {
  return {{"model_dir", o.model_dir}, {"host", o.host},      {"port", o.port},
          {"cors", o.cors_origin},    {"sample", o.sample},  {"data_dir", o.data_dir},
          {"cache_dir", o.cache_dir}, {"web_dir", o.web_dir}};
}

std::string resume_command(const std::string& program, const TrainOptions& o) {
  const TrainOptions d;
  std::string command = shell_word(program);
  const auto add = [&command](const char* flag, const std::string& value = "") {
    command += std::string(" ") + flag + (value.empty() ? "" : " " + shell_word(value));
  };
  // --model-load-path is left out: --resume refuses it (the checkpoint holds
  // the model). So is a random seed: the checkpoint holds that too.
  if (o.epochs != d.epochs) add("--epochs", std::to_string(o.epochs));
  if (o.batch_size != d.batch_size) add("--batch-size", std::to_string(o.batch_size));
  if (o.validation_split != d.validation_split) {
    add("--validation-split", number_text(o.validation_split));
  }
  if (o.seed) add("--seed", std::to_string(*o.seed));
  if (o.threads != d.threads) add("--threads", std::to_string(o.threads));
  if (o.train_limit != d.train_limit) add("--train-limit", std::to_string(o.train_limit));
  if (o.test_limit != d.test_limit) add("--test-limit", std::to_string(o.test_limit));
  if (!o.model_save_path.empty()) add("--model-save-path", o.model_save_path);
  if (o.gpu) add("--gpu");
  if (!o.cuda_graphs) add("--no-cuda-graphs");
  if (!o.onednn) add("--no-onednn");
  if (!o.data_dir.empty()) add("--data-dir", o.data_dir);
  if (!o.freeze_up_to.empty()) add("--freeze-up-to", o.freeze_up_to);
  if (!o.labels.empty()) add("--labels", o.labels);
  if (o.precision != d.precision) add("--precision", o.precision);
  if (o.dataset != d.dataset) add("--dataset", o.dataset);
  if (!o.dropout) add("--no-dropout");
  if (!o.shuffle) add("--no-shuffle");
  if (o.optimizer != d.optimizer) add("--optimizer", o.optimizer);
  if (o.learning_rate != d.learning_rate) add("--learning-rate", number_text(o.learning_rate));
  if (o.early_stopping_patience != d.early_stopping_patience) {
    add("--early-stopping-patience", std::to_string(o.early_stopping_patience));
  }
  if (o.monitor) add("--monitor", *o.monitor);
  if (o.min_delta) add("--min-delta", number_text(*o.min_delta));
  if (o.restore_best_weights) add("--restore-best-weights");
  if (o.save_best) add("--save-best");
  if (o.reduce_lr_patience != d.reduce_lr_patience) {
    add("--reduce-lr-patience", std::to_string(o.reduce_lr_patience));
  }
  if (o.reduce_lr_factor) add("--reduce-lr-factor", number_text(*o.reduce_lr_factor));
  if (o.reduce_lr_min_delta) add("--reduce-lr-min-delta", number_text(*o.reduce_lr_min_delta));
  if (o.min_learning_rate) add("--min-learning-rate", number_text(*o.min_learning_rate));
  if (!o.csv_log.empty()) add("--csv-log", o.csv_log);
  if (!o.quantize.empty()) add("--quantize", o.quantize);
  if (o.weight_shard_size > 0) add("--weight-shard-size", std::to_string(o.weight_shard_size));
  if (o.image_size.size() == 2) {
    add("--image-size", std::to_string(o.image_size[0]) + "," + std::to_string(o.image_size[1]));
  }
  if (!o.color_mode.empty()) add("--color-mode", o.color_mode);
  if (o.interpolation != d.interpolation) add("--interpolation", o.interpolation);
  if (o.crop_to_aspect_ratio) add("--crop-to-aspect-ratio");
  if (o.test_split != d.test_split) add("--test-split", number_text(o.test_split));
  if (!o.cache_dir.empty()) add("--cache-dir", o.cache_dir);
  if (o.skip_bad_images) add("--skip-bad-images");
  if (!o.class_weight.empty()) add("--class-weight", o.class_weight);
  if (!o.augment.empty()) add("--augment", o.augment);
  if (o.augment_threads != d.augment_threads) {
    add("--augment-threads", std::to_string(o.augment_threads));
  }
  if (!o.tensorboard_dir.empty()) add("--tensorboard-dir", o.tensorboard_dir);
  if (o.tensorboard_update_freq != d.tensorboard_update_freq) {
    add("--tensorboard-update-freq", o.tensorboard_update_freq);
  }
  if (o.lr_schedule != d.lr_schedule) add("--lr-schedule", o.lr_schedule);
  if (o.warmup_epochs) add("--warmup-epochs", number_text(*o.warmup_epochs));
  if (o.lr_decay_rate) add("--lr-decay-rate", number_text(*o.lr_decay_rate));
  if (o.lr_decay_epochs) add("--lr-decay-epochs", number_text(*o.lr_decay_epochs));
  if (o.lr_staircase) add("--lr-staircase");
  if (!o.lr_boundaries.empty()) add("--lr-boundaries", numbers_text(o.lr_boundaries));
  if (!o.lr_values.empty()) add("--lr-values", numbers_text(o.lr_values));
  if (o.lr_alpha) add("--lr-alpha", number_text(*o.lr_alpha));
  if (o.lr_pct_start) add("--lr-pct-start", number_text(*o.lr_pct_start));
  if (o.lr_div) add("--lr-div", number_text(*o.lr_div));
  if (o.lr_div_final) add("--lr-div-final", number_text(*o.lr_div_final));
  add("--checkpoint-dir", o.checkpoint_dir);
  add("--resume");
  return command;
}

}  // namespace mnist::cli
