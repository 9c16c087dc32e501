// Cross-field checks of the options, their JSON form (logged, and saved in
// history.json and checkpoints), and the command that resumes a run.
#include "cli/options.hpp"

#include <random>

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

/// Settings that must not change between a run and its resumption.
constexpr const char* kResumeKeys[] = {"batch_size", "validation_split", "train_limit", "seed"};

}  // namespace

uint64_t random_seed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32 | rd()) & ((uint64_t{1} << 53) - 1);  // exact in JSON
}

void check_resumable(const nlohmann::ordered_json& saved,
                     const nlohmann::ordered_json& now,
                     const std::string& path) {
  for (const char* key : kResumeKeys) {
    if (key == std::string("seed") && now[key].is_null()) {
      continue;  // no --seed: take the checkpoint's
    }
    const nlohmann::ordered_json was = saved.value(key, nlohmann::ordered_json());
    if (was != now[key]) {
      throw ConfigError(path + " was made with " + key + " = " + was.dump() + ", this run has " +
                        now[key].dump() + "; resume with the same flags");
    }
  }
}

void validate(const TrainOptions& o) {
  if (o.resume && o.checkpoint_dir.empty()) {
    throw ConfigError("--resume needs --checkpoint-dir (the folder the interrupted run wrote)");
  }
  if (o.resume && !o.model_load_path.empty()) {
    throw ConfigError(
        "--resume and --model-load-path cannot be combined (the checkpoint holds the model)");
  }
}

nlohmann::ordered_json to_json(const TrainOptions& o) {
  return {{"epochs", o.epochs},
          {"batch_size", o.batch_size},
          {"validation_split", o.validation_split},
          {"seed", o.seed ? nlohmann::ordered_json(*o.seed) : nlohmann::ordered_json(nullptr)},
          {"threads", o.threads},
          {"train_limit", o.train_limit},
          {"test_limit", o.test_limit},
          {"model_save_path", o.model_save_path},
          {"gpu", o.gpu},
          {"cuda_graphs", o.cuda_graphs},
          {"onednn_conv", o.onednn},  // the key's name before --no-onednn: files stay comparable
          {"data_dir", o.data_dir},
          {"model_load_path", o.model_load_path},
          {"checkpoint_dir", o.checkpoint_dir},
          {"precision", o.precision}};
}

nlohmann::ordered_json to_json(const ServeOptions& o) {
  return {{"model_dir", o.model_dir}, {"host", o.host},     {"port", o.port},
          {"cors", o.cors_origin},    {"sample", o.sample}, {"data_dir", o.data_dir},
          {"web_dir", o.web_dir}};
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
    add("--validation-split", fmt::format("{}", o.validation_split));
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
  if (o.precision != d.precision) add("--precision", o.precision);
  add("--checkpoint-dir", o.checkpoint_dir);
  add("--resume");
  return command;
}

}  // namespace mnist::cli
