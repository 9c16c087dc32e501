// history.json: the per-epoch figures round-trip through JSON (NaN as null,
// as a run without validation has), and the document holds what docs/training.md
// says it holds, written atomically.
#include "mnist/history.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <gtest/gtest.h>

#include "mnist/fs_util.hpp"
#include "mnist/tfjs_io.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

std::vector<EpochStats> two_epochs() {
  EpochStats a;
  a.epoch = 1;
  a.loss = 0.25;
  a.accuracy = 0.9;
  a.val_loss = std::numeric_limits<double>::quiet_NaN();  // no validation set
  a.val_accuracy = std::numeric_limits<double>::quiet_NaN();
  a.seconds = 2.5;
  a.train_seconds = 2.0;
  a.batches = 40;
  a.images_per_second = 2550.0;
  EpochStats b = a;
  b.epoch = 2;
  b.val_loss = 0.125;
  b.val_accuracy = 0.95;
  return {a, b};
}

TEST(HistoryTest, EpochsRoundTripWithTfjsKeys) {
  const auto epochs = two_epochs();
  const nlohmann::ordered_json json = epochs_to_json(epochs);
  ASSERT_EQ(json.size(), 2U);
  EXPECT_EQ(json[1]["acc"], 0.9);
  EXPECT_EQ(json[1]["val_acc"], 0.95);
  EXPECT_TRUE(nlohmann::ordered_json::parse(json.dump())[0]["val_loss"].is_null())
      << "NaN is written as null";
  const auto back = epochs_from_json(nlohmann::ordered_json::parse(json.dump()));
  ASSERT_EQ(back.size(), 2U);
  EXPECT_EQ(back[1].epoch, 2);
  EXPECT_EQ(back[1].val_loss, 0.125);
  EXPECT_EQ(back[0].batches, 40);
  EXPECT_TRUE(std::isnan(back[0].val_loss));
  // Missing figures read back as NaN, not as a crash.
  const auto sparse = epochs_from_json(nlohmann::ordered_json::parse(R"([{"epoch": 3}])"));
  ASSERT_EQ(sparse.size(), 1U);
  EXPECT_TRUE(std::isnan(sparse[0].loss));
}

TEST(HistoryTest, DocumentHoldsSettingsEpochsAndTest) {
  test::TempDir dir;
  RunRecord run;
  run.settings = {{"epochs", 2}, {"seed", 7}};
  run.device = "CPU (2 threads)";
  run.epochs = two_epochs();
  run.test.loss = 0.03;
  run.test.accuracy = 0.99;
  run.test.count = 10000;
  run.total_seconds = 12.5;
  save_history(dir.path().string(), run);
  const nlohmann::ordered_json doc = read_json_file(dir.file(kHistoryFile));
  EXPECT_EQ(doc["generatedBy"], generated_by());
  EXPECT_EQ(doc["settings"]["seed"], 7);
  EXPECT_EQ(doc["device"], "CPU (2 threads)");
  EXPECT_EQ(doc["epochs"].size(), 2U);
  EXPECT_EQ(doc["test"]["count"], 10000);
  EXPECT_EQ(doc["test"]["acc"], 0.99);
  EXPECT_EQ(doc["total_seconds"], 12.5);
  std::vector<std::string> keys;
  for (const auto& [key, value] : doc.items()) {
    keys.push_back(key);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"generatedBy", "settings", "device", "epochs", "test",
                                            "total_seconds"}));
}

}  // namespace
}  // namespace mnist
