// Plain option structs, one per command, with mnist-node's defaults.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mnist/train_job.hpp"

namespace mnist::cli {

/// Options every command shares.
struct GlobalOptions {
  std::string log_level = "info";  ///< trace|debug|info|warn|error|off
  bool quiet = false;              ///< only errors and results
};

/// `mnist-train [train]`: defaults from mnist-node/main.js.
struct TrainOptions {
  int64_t epochs = 20;
  int64_t batch_size = 128;
  double validation_split = 0.15;
  std::optional<uint64_t> seed;  ///< unset: a random seed, logged and saved
  int threads = 0;               ///< 0: one per core
  int64_t train_limit = 0;       ///< 0: all records
  int64_t test_limit = 0;        ///< 0: all records
  std::string model_save_path;   ///< empty: don't save (as mnist-node)
  bool gpu = false;
  bool cuda_graphs = true;         ///< --no-cuda-graphs: eager steps on CUDA
  bool onednn = true;              ///< --no-onednn: libtorch's own convolutions and pooling only
  std::string data_dir;            ///< empty: default_data_dir()
  std::string model_load_path;     ///< start from this saved model (any supported)
  std::string freeze_up_to;        ///< empty: none; else a layer name or 0-based index
  std::string labels;              ///< empty: all (or the loaded model's); else "0-4", "5,6,7"
  bool replace_head = false;       ///< a new last Dense layer sized to the labels
  bool fresh_optimizer = false;    ///< ignore the loaded model's optimizer state
  std::string checkpoint_dir;      ///< write a checkpoint after every epoch here
  bool resume = false;             ///< continue from the newest checkpoint
  std::string precision = "fp32";  ///< fp32 | bf16 (compute; weights stay fp32)
  std::string dataset = "mnist";   ///< mnist | fashion-mnist
  bool dropout = true;             ///< --no-dropout: the model without its Dropout layers
  bool shuffle = true;             ///< --no-shuffle: file order every epoch
  std::string optimizer = "rmsprop";
  double learning_rate = 0;  ///< 0: the optimizer's TF.js default
  // Keras callbacks (0 patience: off). Unset optionals take Keras's defaults;
  // validate() refuses them where no callback would use them.
  int64_t early_stopping_patience = 0;
  std::optional<std::string> monitor;  ///< val_loss (default) | val_acc | loss | acc
  std::optional<double> min_delta;     ///< EarlyStopping's, default 0
  bool restore_best_weights = false;
  bool save_best = false;
  int64_t reduce_lr_patience = 0;
  std::optional<double> reduce_lr_factor;     ///< default 0.1
  std::optional<double> reduce_lr_min_delta;  ///< default 1e-4
  std::optional<double> min_learning_rate;    ///< default 0
  std::string csv_log;                        ///< empty: none
  std::string quantize;            ///< saved weights: empty (float32) | uint8 | uint16 | float16
  uint64_t weight_shard_size = 0;  ///< 0: one weights.bin; else shards of at most this many bytes
  // A folder of images as --data-dir.
  std::vector<int64_t> image_size;  ///< {} or {H, W}
  std::string color_mode;           ///< "", grayscale, rgb
  std::string interpolation = "bilinear";
  bool crop_to_aspect_ratio = false;
  double test_split = 0;
  std::string cache_dir;
  bool skip_bad_images = false;
  std::string class_weight;  ///< empty: none; "balanced"; else a JSON file
  std::string augment;       ///< empty: none; else parse_augment_spec's text
  int augment_threads = 1;
  std::string tensorboard_dir;                    ///< empty: none
  std::string tensorboard_update_freq = "epoch";  ///< epoch | batch
  // The learning-rate schedule (lr_schedule.hpp). Unset optionals take the
  // defaults; validate() refuses them where the schedule does not use them.
  std::string lr_schedule = "constant";
  std::optional<double> warmup_epochs;
  std::optional<double> lr_decay_rate;
  std::optional<double> lr_decay_epochs;
  bool lr_staircase = false;
  std::vector<double> lr_boundaries;
  std::vector<double> lr_values;
  std::optional<double> lr_alpha;
  std::optional<double> lr_pct_start;
  std::optional<double> lr_div;
  std::optional<double> lr_div_final;
};

/// `mnist-train evaluate`: test loss/accuracy of a saved model.
struct EvaluateOptions {
  std::string model;       ///< folder with model.json (or the file itself)
  std::string data_dir;    ///< empty: the default folder of the model's dataset
  int64_t test_limit = 0;  ///< 0: all records
  std::string cache_dir;   ///< a folder's decoded images ("": the default)
  bool json = false;       ///< one JSON object on stdout
  bool gpu = false;
  std::string precision = "fp32";
  bool onednn = true;  ///< --no-onednn
};

/// `mnist-train predict`: classes and probabilities for images.
struct PredictOptions {
  std::string model;
  std::vector<std::string> images;  ///< PNG, JPEG or PGM files
  bool invert = false;              ///< dark ink on a light background
  std::string idx;                  ///< an IDX images file instead of images
  int64_t index = 0;                ///< record in `idx`
  bool json = false;
};

/// `mnist-train summary`: the TF.js summary table of a saved model.
struct SummaryOptions {
  std::string model;
};

/// `mnist-train convert`: a model saved again, its weights stored otherwise.
struct ConvertOptions {
  std::string model;               ///< folder with model.json (or the file itself)
  std::string out;                 ///< the folder to save into (may be the same)
  std::string quantize;            ///< empty: float32 | uint8 | uint16 | float16
  uint64_t weight_shard_size = 0;  ///< 0: one weights.bin
  std::string to = "tfjs";         ///< tfjs (a model folder) | onnx (`out`: an .onnx file)
};

/// `mnist-train serve`: the demo page, the model and a test sample over HTTP.
struct ServeOptions {
  std::string model_dir;           ///< folder with model.json (required)
  std::string host = "127.0.0.1";  ///< loopback unless asked otherwise
  int port = 8080;                 ///< 0: any free port (printed)
  std::string cors_origin;         ///< empty: no CORS headers
  int64_t sample = 200;            ///< test images served to the page
  std::string data_dir;            ///< IDX files or a folder of images; empty: the model's
  std::string cache_dir;           ///< a folder's decoded images; empty: the default
  std::string web_dir;             ///< empty: default_web_dir()
};

/// `mnist-train report`: one HTML page of one or several runs' figures.
struct ReportOptions {
  std::vector<std::string> runs;  ///< model folders a training saved (with history.json)
  std::string out;                ///< the HTML file to write
  std::string data_dir;           ///< the test images; empty: where each run's history.json says
  std::string cache_dir;          ///< a folder's decoded images; empty: the default
  int64_t test_limit = 0;         ///< 0: all test records
  int64_t wrong = 16;             ///< most confidently wrong images shown per run
};

/// The checks that involve several fields (each field's own range is
/// checked where the flag is declared); throws ConfigError.
void validate(const TrainOptions& options);

/// The command that continues an interrupted run: `program` and the flags
/// of `options` that differ from their defaults, each once, with
/// --checkpoint-dir and --resume (values quoted for a POSIX shell where
/// needed).
std::string resume_command(const std::string& program, const TrainOptions& options);

/// The training job's settings (train_job.hpp) these options ask for
/// (CLI11 has checked each value).
TrainSettings train_settings(const TrainOptions& options);

/// train_settings(options) in history.json's form (legacy_settings_json);
/// a resumed run compares it with its checkpoint's (check_resumable).
nlohmann::ordered_json to_json(const TrainOptions& options);
nlohmann::ordered_json to_json(const ServeOptions& options);

}  // namespace mnist::cli
