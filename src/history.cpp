// history.json and the JSON form of per-epoch figures.
#include "mnist/history.hpp"

#include <filesystem>
#include <limits>

#include "mnist/fs_util.hpp"
#include "mnist/tfjs_io.hpp"

using nlohmann::ordered_json;

namespace mnist {

namespace {

/// An EpochStats field and its key, in the order history.json lists them
/// (TF.js's History names: loss, acc, val_loss, val_acc).
struct Field {
  const char* key;
  double EpochStats::*real;    ///< a floating field, or null
  int64_t EpochStats::*whole;  ///< else this integer one
};
constexpr Field kFields[] = {
    {"epoch", nullptr, &EpochStats::epoch},
    {"loss", &EpochStats::loss, nullptr},
    {"acc", &EpochStats::accuracy, nullptr},
    {"val_loss", &EpochStats::val_loss, nullptr},
    {"val_acc", &EpochStats::val_accuracy, nullptr},
    {"seconds", &EpochStats::seconds, nullptr},
    {"train_seconds", &EpochStats::train_seconds, nullptr},
    {"batches", nullptr, &EpochStats::batches},
    {"images_per_second", &EpochStats::images_per_second, nullptr},
    {"lr", &EpochStats::learning_rate, nullptr},
};

/// entry[key] as a number; NaN when it is missing or not a number.
double number_or_nan(const ordered_json& entry, const char* key) {
  const auto it = entry.find(key);
  return it != entry.end() && it->is_number() ? it->get<double>()
                                              : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

ordered_json epochs_to_json(const std::vector<EpochStats>& epochs) {
  ordered_json out = ordered_json::array();
  for (const EpochStats& s : epochs) {
    ordered_json entry = ordered_json::object();
    for (const Field& f : kFields) {
      entry[f.key] = f.real != nullptr ? ordered_json(s.*f.real) : ordered_json(s.*f.whole);
    }
    out.push_back(entry);
  }
  return out;
}

std::vector<EpochStats> epochs_from_json(const ordered_json& epochs) {
  std::vector<EpochStats> out;
  for (const auto& e : epochs) {
    EpochStats s;
    for (const Field& f : kFields) {
      if (f.real != nullptr) {
        s.*f.real = number_or_nan(e, f.key);
      } else if (const auto it = e.find(f.key); it != e.end() && it->is_number_integer()) {
        s.*f.whole = it->get<int64_t>();
      }
    }
    out.push_back(s);
  }
  return out;
}

ordered_json history_json(const RunRecord& run) {
  ordered_json doc;
  doc["generatedBy"] = generated_by();
  doc["settings"] = run.settings;
  doc["device"] = run.device;
  doc["epochs"] = epochs_to_json(run.epochs);
  doc["test"] = {{"loss", run.test.loss}, {"acc", run.test.accuracy}, {"count", run.test.count}};
  doc["total_seconds"] = run.total_seconds;
  if (!run.callbacks.is_null()) {
    doc["callbacks"] = run.callbacks;
  }
  if (!run.data.is_null()) {
    doc["data"] = run.data;
  }
  if (!run.class_weights.is_null()) {
    doc["class_weights"] = run.class_weights;
  }
  return doc;
}

void save_history(const std::string& dir, const RunRecord& run) {
  write_file_atomic((std::filesystem::path(dir) / kHistoryFile).string(),
                    history_json(run).dump(2) + "\n");
}

}  // namespace mnist
