// Keras's EarlyStopping, ReduceLROnPlateau and ModelCheckpoint(save_best_only)
// rules, epoch by epoch, and their state surviving a checkpoint.
#include "mnist/callbacks.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "mnist/error.hpp"

namespace mnist {
namespace {

EpochStats epoch(int64_t n, double val_loss, double val_acc = 0.5) {
  EpochStats s;
  s.epoch = n;
  s.loss = 1.0;
  s.accuracy = 0.5;
  s.val_loss = val_loss;
  s.val_accuracy = val_acc;
  return s;
}

TEST(CallbacksTest, MonitorNamesAndDirections) {
  for (const char* name : {"val_loss", "val_acc", "loss", "acc"}) {
    ASSERT_TRUE(parse_monitor(name).has_value()) << name;
    EXPECT_STREQ(monitor_name(*parse_monitor(name)), name);
  }
  EXPECT_FALSE(parse_monitor("accuracy").has_value());
  EXPECT_TRUE(monitor_maximises(Monitor::kValAcc));
  EXPECT_TRUE(monitor_maximises(Monitor::kAcc));
  EXPECT_FALSE(monitor_maximises(Monitor::kValLoss));
  EXPECT_TRUE(monitor_needs_validation(Monitor::kValAcc));
  EXPECT_FALSE(monitor_needs_validation(Monitor::kLoss));
}

TEST(CallbacksTest, EarlyStoppingWaitsPatienceEpochsWithoutImprovement) {
  CallbackConfig c;
  c.early_stopping_patience = 2;
  TrainingCallbacks cb(c);
  EXPECT_FALSE(cb.on_epoch_end(epoch(1, 0.50), 1e-3).stop);
  EXPECT_FALSE(cb.on_epoch_end(epoch(2, 0.40), 1e-3).stop);  // better
  EXPECT_FALSE(cb.on_epoch_end(epoch(3, 0.45), 1e-3).stop);  // wait 1
  EXPECT_FALSE(cb.on_epoch_end(epoch(4, 0.39), 1e-3).stop);  // better: wait 0
  EXPECT_FALSE(cb.on_epoch_end(epoch(5, 0.39), 1e-3).stop);  // equal is no improvement
  const EpochDecision d = cb.on_epoch_end(epoch(6, 0.41), 1e-3);
  EXPECT_TRUE(d.stop);
  EXPECT_NE(d.stop_reason.find("epoch 6"), std::string::npos) << d.stop_reason;
  EXPECT_NE(d.stop_reason.find("best 0.3900 at epoch 4"), std::string::npos) << d.stop_reason;
  EXPECT_EQ(cb.stopped_epoch(), 6);
  EXPECT_EQ(cb.early_stopping_best_epoch(), 4);
}

TEST(CallbacksTest, MinDeltaMustBeExceededAndAccuracyIsMaximised) {
  CallbackConfig c;
  c.monitor = Monitor::kValAcc;
  c.early_stopping_patience = 1;
  c.min_delta = 0.01;
  TrainingCallbacks cb(c);
  EXPECT_FALSE(cb.on_epoch_end(epoch(1, 1, 0.90), 1e-3).stop);
  EXPECT_FALSE(cb.on_epoch_end(epoch(2, 1, 0.92), 1e-3).stop);  // +0.02 > 0.01
  EXPECT_TRUE(cb.on_epoch_end(epoch(3, 1, 0.925), 1e-3).stop);  // +0.005 is not enough
  EXPECT_DOUBLE_EQ(cb.early_stopping_best(), 0.92);
}

TEST(CallbacksTest, NeverStopsAfterTheFirstEpochAndSkipsMissingValues) {
  CallbackConfig c;
  c.early_stopping_patience = 1;
  TrainingCallbacks cb(c);
  // A NaN (not measured) epoch counts for nothing, as a missing log key.
  EXPECT_FALSE(cb.on_epoch_end(epoch(1, std::nan("")), 1e-3).stop);
  EXPECT_FALSE(cb.on_epoch_end(epoch(2, 0.5), 1e-3).stop);
  EXPECT_TRUE(cb.on_epoch_end(epoch(3, 0.6), 1e-3).stop);
}

TEST(CallbacksTest, RestoreBestWeightsKeepsTheFirstEpochThenEachBetterOne) {
  CallbackConfig c;
  c.early_stopping_patience = 3;
  c.restore_best_weights = true;
  TrainingCallbacks cb(c);
  EXPECT_TRUE(cb.on_epoch_end(epoch(1, 0.5), 1e-3).keep_best_weights);
  EXPECT_FALSE(cb.on_epoch_end(epoch(2, 0.6), 1e-3).keep_best_weights);
  EXPECT_TRUE(cb.on_epoch_end(epoch(3, 0.4), 1e-3).keep_best_weights);
  EXPECT_EQ(cb.early_stopping_best_epoch(), 3);
}

TEST(CallbacksTest, ReduceLrOnPlateauMultipliesAfterPatienceDownToTheMinimum) {
  CallbackConfig c;
  c.reduce_lr_patience = 2;
  c.reduce_lr_factor = 0.5;
  c.min_learning_rate = 0.3;
  TrainingCallbacks cb(c);
  EXPECT_FALSE(cb.on_epoch_end(epoch(1, 1.0), 1.0).new_learning_rate);
  EXPECT_FALSE(cb.on_epoch_end(epoch(2, 0.99995), 1.0).new_learning_rate);  // < min_delta 1e-4
  const EpochDecision d = cb.on_epoch_end(epoch(3, 1.0), 1.0);
  ASSERT_TRUE(d.new_learning_rate);
  EXPECT_DOUBLE_EQ(*d.new_learning_rate, 0.5);
  EXPECT_NE(d.learning_rate_reason.find("1 -> 0.5"), std::string::npos) << d.learning_rate_reason;
  EXPECT_FALSE(cb.on_epoch_end(epoch(4, 1.0), 0.5).new_learning_rate);  // wait restarted
  const EpochDecision floor = cb.on_epoch_end(epoch(5, 1.0), 0.5);
  ASSERT_TRUE(floor.new_learning_rate);
  EXPECT_DOUBLE_EQ(*floor.new_learning_rate, 0.3);  // max(0.25, min_lr)
  cb.on_epoch_end(epoch(6, 1.0), 0.3);
  EXPECT_FALSE(cb.on_epoch_end(epoch(7, 1.0), 0.3).new_learning_rate);  // at the minimum
}

TEST(CallbacksTest, SaveBestReportsEveryStrictImprovement) {
  CallbackConfig c;
  c.save_best = true;
  c.monitor = Monitor::kLoss;
  TrainingCallbacks cb(c);
  std::vector<bool> saved;
  for (double loss : {0.9, 0.8, 0.8, 0.85, 0.7}) {
    EpochStats s = epoch(static_cast<int64_t>(saved.size()) + 1, std::nan(""));
    s.loss = loss;
    saved.push_back(cb.on_epoch_end(s, 1e-3).save_best);
  }
  EXPECT_EQ(saved, (std::vector<bool>{true, true, false, false, true}));
  EXPECT_EQ(cb.save_best_epoch(), 5);
  EXPECT_DOUBLE_EQ(cb.save_best_value(), 0.7);
}

TEST(CallbacksTest, StateRoundTripsThroughJson) {
  CallbackConfig c;
  c.early_stopping_patience = 3;
  c.reduce_lr_patience = 1;
  c.save_best = true;
  TrainingCallbacks a(c);
  a.on_epoch_end(epoch(1, 0.5), 1e-3);
  a.on_epoch_end(epoch(2, 0.6), 1e-3);
  TrainingCallbacks b(c);
  b.load_state(nlohmann::ordered_json::parse(a.state().dump()));
  EXPECT_EQ(b.state(), a.state());
  // Both go on identically: one more bad epoch stops neither, two more stop both.
  for (int64_t e = 3; e <= 4; ++e) {
    EXPECT_EQ(a.on_epoch_end(epoch(e, 0.7), 1e-3).stop, b.on_epoch_end(epoch(e, 0.7), 1e-3).stop);
  }
  EXPECT_EQ(a.stopped_epoch(), 4);
  EXPECT_EQ(b.stopped_epoch(), 4);
  // A fresh state holds infinities, written as strings.
  EXPECT_EQ(TrainingCallbacks(c).state()["save_best"]["best"], "inf");
  TrainingCallbacks fresh(c);
  fresh.load_state(TrainingCallbacks(c).state());
  EXPECT_TRUE(std::isinf(fresh.save_best_value()));

  EXPECT_THROW(b.load_state(nlohmann::ordered_json::array()), FormatError);
  nlohmann::ordered_json other = a.state();
  other["monitor"] = "acc";
  EXPECT_THROW(b.load_state(other), FormatError);
  nlohmann::ordered_json bad = a.state();
  bad["early_stopping"]["wait"] = -1;
  EXPECT_THROW(b.load_state(bad), FormatError);
}

}  // namespace
}  // namespace mnist
