// history.json and the JSON form of per-epoch figures.
#include "mnist/history.hpp"

#include <filesystem>
#include <limits>

#include "mnist/fs_util.hpp"
#include "mnist/tfjs_io.hpp"

using nlohmann::ordered_json;

namespace mnist {

namespace {

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
    out.push_back({{"epoch", s.epoch},
                   {"loss", s.loss},
                   {"acc", s.accuracy},
                   {"val_loss", s.val_loss},
                   {"val_acc", s.val_accuracy},
                   {"seconds", s.seconds},
                   {"train_seconds", s.train_seconds},
                   {"batches", s.batches},
                   {"images_per_second", s.images_per_second}});
  }
  return out;
}

std::vector<EpochStats> epochs_from_json(const ordered_json& epochs) {
  std::vector<EpochStats> out;
  for (const auto& e : epochs) {
    EpochStats s;
    s.epoch = e.value("epoch", int64_t{0});
    s.loss = number_or_nan(e, "loss");
    s.accuracy = number_or_nan(e, "acc");
    s.val_loss = number_or_nan(e, "val_loss");
    s.val_accuracy = number_or_nan(e, "val_acc");
    s.seconds = number_or_nan(e, "seconds");
    s.train_seconds = number_or_nan(e, "train_seconds");
    s.batches = e.value("batches", int64_t{0});
    s.images_per_second = number_or_nan(e, "images_per_second");
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
  return doc;
}

void save_history(const std::string& dir, const RunRecord& run) {
  write_file_atomic((std::filesystem::path(dir) / kHistoryFile).string(),
                    history_json(run).dump(2) + "\n");
}

}  // namespace mnist
