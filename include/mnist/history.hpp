// history.json, the record of a training run that --model-save-path writes
// beside model.json (not part of the TF.js format, harmless beside it), and
// the per-epoch figures' JSON form, which checkpoints' state.json shares.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mnist/evaluate.hpp"
#include "mnist/train.hpp"

namespace mnist {

constexpr const char* kHistoryFile = "history.json";

/// Per-epoch figures as JSON objects, keyed as TF.js's History keys them
/// (loss, acc, val_loss, val_acc; NaN as null) plus epoch and timing.
nlohmann::ordered_json epochs_to_json(const std::vector<EpochStats>& epochs);

/// The inverse of epochs_to_json; missing or null numbers become NaN.
std::vector<EpochStats> epochs_from_json(const nlohmann::ordered_json& epochs);

/// What history.json records.
struct RunRecord {
  nlohmann::ordered_json settings;  ///< the run's options, as the caller logs them
  std::string device;               ///< describe_device()
  std::vector<EpochStats> epochs;
  EvalResult test;             ///< the final evaluation on the test set
  double total_seconds = 0.0;  ///< the whole job, start-up to saving
  /// What the Keras-style callbacks did (best epoch, early stop), or null.
  nlohmann::ordered_json callbacks;
  /// The class weights training used (class_weights_json), or null: none.
  nlohmann::ordered_json class_weights = {};
  /// A folder dataset's record (classes, which files went where, bad
  /// images), or null.
  nlohmann::ordered_json data = {};
};

/// The history.json document: generatedBy, settings, device, epochs, test
/// {loss, acc, count}, total_seconds, callbacks when there are any, and
/// class_weights when training used some.
nlohmann::ordered_json history_json(const RunRecord& run);

/// Writes DIR/history.json atomically (fs_util's write_file_atomic).
/// Throws IoError.
void save_history(const std::string& dir, const RunRecord& run);

}  // namespace mnist
