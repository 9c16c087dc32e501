// Keras's epoch-end callbacks, with their semantics (docs/design.md,
// "Callbacks"): EarlyStopping, ReduceLROnPlateau and ModelCheckpoint's
// save_best_only, as one object whose whole state saves into a checkpoint.
// It decides; the caller acts (saves, copies weights, sets the rate, logs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mnist/model.hpp"
#include "mnist/train.hpp"

namespace mnist {

/// The quantity a callback watches, named as Keras's logs name it.
enum class Monitor { kValLoss, kValAcc, kLoss, kAcc };

const char* monitor_name(Monitor monitor);
std::optional<Monitor> parse_monitor(const std::string& name);
/// The monitored figure of an epoch (NaN when it was not measured).
double monitor_value(const EpochStats& stats, Monitor monitor);
/// Keras's mode "auto": higher is better when "acc" is in the name.
bool monitor_maximises(Monitor monitor);
/// Whether the figure needs a validation set.
bool monitor_needs_validation(Monitor monitor);

struct CallbackConfig {
  Monitor monitor = Monitor::kValLoss;
  /// EarlyStopping(patience, min_delta, restore_best_weights); 0 = off.
  int64_t early_stopping_patience = 0;
  double min_delta = 0.0;
  bool restore_best_weights = false;
  /// ModelCheckpoint(save_best_only=True): report each new best.
  bool save_best = false;
  /// ReduceLROnPlateau(patience, factor, min_delta, min_lr), cooldown 0;
  /// 0 = off.
  int64_t reduce_lr_patience = 0;
  double reduce_lr_factor = 0.1;
  double reduce_lr_min_delta = 1e-4;
  double min_learning_rate = 0.0;
};

/// What the caller should do after an epoch, in this order: keep a copy of
/// the weights, save the model, set the learning rate, stop.
struct EpochDecision {
  bool keep_best_weights = false;  ///< EarlyStopping's best_weights = get_weights()
  bool save_best = false;          ///< ModelCheckpoint: a new best, save now
  std::optional<double> new_learning_rate;
  std::string learning_rate_reason;  ///< why the rate changed, for the log
  bool stop = false;
  std::string stop_reason;  ///< why training stops, for the log
};

/// The three callbacks' state machine. Epochs are 1-based here (Keras's are
/// 0-based: its `epoch > 0` guard is our epoch > 1).
class TrainingCallbacks {
 public:
  explicit TrainingCallbacks(const CallbackConfig& config);

  /// Keras's on_epoch_end of EarlyStopping, ReduceLROnPlateau and
  /// ModelCheckpoint for the finished epoch `stats`, trained at
  /// `learning_rate`. A NaN monitored value is skipped (Keras: a missing
  /// log key) by all three.
  EpochDecision on_epoch_end(const EpochStats& stats, double learning_rate);

  /// Whether any callback is on.
  bool active() const;
  /// The epoch at which EarlyStopping ended training (0: it did not).
  int64_t stopped_epoch() const { return stopped_epoch_; }
  /// EarlyStopping's best epoch and value (0 / +-inf before the first).
  int64_t early_stopping_best_epoch() const { return es_best_epoch_; }
  double early_stopping_best() const { return es_best_; }
  /// ModelCheckpoint's best epoch and value.
  int64_t save_best_epoch() const { return best_epoch_; }
  double save_best_value() const { return best_; }
  const CallbackConfig& config() const { return config_; }

  /// Everything above plus the patience counters, as JSON (infinities as
  /// strings), and back. load_state throws FormatError on a bad document.
  nlohmann::ordered_json state() const;
  void load_state(const nlohmann::ordered_json& state);

 private:
  bool improved(double value, double reference, double min_delta) const;

  CallbackConfig config_;
  // EarlyStopping
  int64_t es_wait_ = 0;
  double es_best_;
  int64_t es_best_epoch_ = 0;
  bool es_has_weights_ = false;
  int64_t stopped_epoch_ = 0;
  // ReduceLROnPlateau
  int64_t lr_wait_ = 0;
  double lr_best_;
  // ModelCheckpoint
  double best_;
  int64_t best_epoch_ = 0;
};

/// Copies of the model's parameters (CPU, contiguous), and putting such
/// copies back (EarlyStopping's get_weights / set_weights).
std::vector<at::Tensor> copy_parameters(Model& model);
void load_parameters(Model& model, const std::vector<at::Tensor>& saved);

}  // namespace mnist
