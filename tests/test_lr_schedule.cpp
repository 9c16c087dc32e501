// Learning-rate schedules: each one's rates at chosen steps against Keras 3's
// and fastai's formulas written out here (keras/src/optimizers/schedules/
// learning_rate_schedule.py, fastai/callback/schedule.py), the checks and
// their messages, and train() setting the rate of every step (resumed too).
#include "mnist/lr_schedule.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
#include "mnist/train.hpp"

namespace mnist {
namespace {

const double kPi = std::acos(-1.0);

LrPlan plan(const LrSchedule& s, double rate, int64_t steps_per_epoch, int64_t epochs) {
  check_lr_schedule(s, epochs, false, false);
  return plan_lr_schedule(s, rate, steps_per_epoch, epochs);
}

/// The message of the ConfigError `f` throws ("" when it throws none).
template <typename F>
std::string config_error(F f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(LrScheduleTest, NamesRoundTrip) {
  for (const std::string& name : lr_schedule_names()) {
    ASSERT_TRUE(parse_lr_schedule(name).has_value()) << name;
    EXPECT_EQ(lr_schedule_name(*parse_lr_schedule(name)), name);
  }
  EXPECT_FALSE(parse_lr_schedule("Cosine").has_value());
  EXPECT_FALSE(parse_lr_schedule("").has_value());
  EXPECT_TRUE(is_unscheduled(LrSchedule{}));
  LrSchedule warm;
  warm.warmup_epochs = 1;
  EXPECT_FALSE(is_unscheduled(warm));
}

TEST(LrScheduleTest, ConstantWithAWarmupRisesFromZero) {
  LrSchedule s;
  s.warmup_epochs = 1;
  const LrPlan p = plan(s, 0.001, 10, 3);
  EXPECT_EQ(p.warmup_steps, 10);
  EXPECT_EQ(scheduled_rate(p, 0), 0.0);
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 5), 0.001 * 5 / 10);
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 9), 0.001 * 9 / 10);
  EXPECT_EQ(scheduled_rate(p, 10), 0.001);
  EXPECT_EQ(scheduled_rate(p, 29), 0.001);
  EXPECT_EQ(scheduled_rate(plan(LrSchedule{}, 0.001, 10, 3), 17), 0.001);
}

// ExponentialDecay: initial * decay_rate ^ (step / decay_steps), the
// exponent floored with staircase.
TEST(LrScheduleTest, ExponentialDecayAsKeras) {
  LrSchedule s;
  s.kind = LrScheduleKind::kExponential;
  s.decay_rate = 0.5;
  s.decay_epochs = 1;
  const LrPlan p = plan(s, 0.1, 10, 4);
  EXPECT_EQ(p.decay_steps, 10);
  EXPECT_EQ(scheduled_rate(p, 0), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 5), 0.1 * std::pow(0.5, 5.0 / 10));
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 10), 0.05);
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 37), 0.1 * std::pow(0.5, 37.0 / 10));
  s.staircase = true;
  const LrPlan stairs = plan(s, 0.1, 10, 4);
  EXPECT_EQ(scheduled_rate(stairs, 9), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_rate(stairs, 10), 0.05);
  EXPECT_DOUBLE_EQ(scheduled_rate(stairs, 19), 0.05);
  EXPECT_DOUBLE_EQ(scheduled_rate(stairs, 20), 0.025);
  // decay_steps = round(epochs * steps per epoch), at least 1.
  s.decay_epochs = 0.25;
  EXPECT_EQ(plan(s, 0.1, 10, 4).decay_steps, 3);  // 2.5 rounds away from 0
  s.decay_epochs = 0.01;
  EXPECT_EQ(plan(s, 0.1, 10, 4).decay_steps, 1);
}

// PiecewiseConstantDecay: values[0] while step <= boundaries[0], values[i]
// for boundaries[i-1] < step <= boundaries[i], values[-1] after the last.
TEST(LrScheduleTest, PiecewiseConstantBoundariesAsKeras) {
  LrSchedule s;
  s.kind = LrScheduleKind::kStep;
  s.boundaries = {1, 2.5};
  s.values = {0.1, 0.01, 0.001};
  const LrPlan p = plan(s, 0.5, 10, 4);
  EXPECT_EQ(p.boundaries, (std::vector<int64_t>{10, 25}));
  EXPECT_EQ(scheduled_rate(p, 0), 0.1);
  EXPECT_EQ(scheduled_rate(p, 10), 0.1);  // the boundary's own step: still the first value
  EXPECT_EQ(scheduled_rate(p, 11), 0.01);
  EXPECT_EQ(scheduled_rate(p, 25), 0.01);
  EXPECT_EQ(scheduled_rate(p, 26), 0.001);
  EXPECT_EQ(scheduled_rate(p, 1000), 0.001);
}

// CosineDecay: decayed = (1 - alpha) * 0.5 * (1 + cos(pi * step / D)) +
// alpha, times the rate; with a warmup, (target - initial) * step / W +
// initial first (initial 0 here), then the decay over step - W.
TEST(LrScheduleTest, CosineDecayAsKeras) {
  LrSchedule s;
  s.kind = LrScheduleKind::kCosine;
  s.alpha = 0.1;
  const auto decayed = [](double rate, double alpha, double step, double d) {
    return rate * ((1 - alpha) * 0.5 * (1 + std::cos(kPi * step / d)) + alpha);
  };
  const LrPlan p = plan(s, 0.01, 10, 3);
  EXPECT_EQ(p.decay_steps, 30);
  EXPECT_EQ(p.warmup_steps, 0);
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 0), 0.01);
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 7), decayed(0.01, 0.1, 7, 30));
  EXPECT_NEAR(scheduled_rate(p, 15), 0.01 * (0.9 * 0.5 + 0.1), 1e-15);
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 30), 0.001);
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 45), 0.001);  // clamped to decay_steps

  s.warmup_epochs = 1;
  const LrPlan w = plan(s, 0.01, 10, 3);
  EXPECT_EQ(w.warmup_steps, 10);
  EXPECT_EQ(w.decay_steps, 20);
  EXPECT_EQ(scheduled_rate(w, 0), 0.0);
  EXPECT_DOUBLE_EQ(scheduled_rate(w, 1), 0.01 * 1 / 10);
  EXPECT_DOUBLE_EQ(scheduled_rate(w, 9), 0.01 * 9 / 10);
  EXPECT_DOUBLE_EQ(scheduled_rate(w, 10), 0.01);  // the warmup's end: the decay's start
  EXPECT_DOUBLE_EQ(scheduled_rate(w, 13), decayed(0.01, 0.1, 3, 20));
  EXPECT_DOUBLE_EQ(scheduled_rate(w, 30), 0.001);
  EXPECT_DOUBLE_EQ(scheduled_rate(w, 31), 0.001);
}

// fit_one_cycle: combined_cos(pct_start, lr_max/div, lr_max,
// lr_max/div_final) at pos = step / total; sched_cos(start, end, p) =
// start + (1 + cos(pi * (1 - p))) * (end - start) / 2.
TEST(LrScheduleTest, OneCycleAsFastai) {
  LrSchedule s;
  s.kind = LrScheduleKind::kOneCycle;
  const auto cos_anneal = [](double start, double end, double p) {
    return start + (1 + std::cos(kPi * (1 - p))) * (end - start) / 2;
  };
  const double lr_max = 0.01;
  const LrPlan p = plan(s, lr_max, 10, 4);  // 40 steps; the rise over 10
  EXPECT_EQ(p.total_steps, 40);
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 0), lr_max / 25);  // start: lr_max / div
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 5), cos_anneal(lr_max / 25, lr_max, 0.125 / 0.25));
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 10), lr_max);  // peak at pos = pct_start
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 25), cos_anneal(lr_max, lr_max / 1e5, 0.375 / 0.75));
  EXPECT_DOUBLE_EQ(scheduled_rate(p, 39), cos_anneal(lr_max, lr_max / 1e5, 0.725 / 0.75));
  // end: lr_max / div_final (as start + (end - start): within an ulp of lr_max)
  EXPECT_NEAR(scheduled_rate(p, 40), lr_max / 1e5, 1e-17);
  for (int64_t step = 1; step < 40; ++step) {
    const double r = scheduled_rate(p, step);
    EXPECT_GT(r, lr_max / 1e5);
    EXPECT_LE(r, lr_max);
    EXPECT_EQ(r > scheduled_rate(p, step - 1), step <= 10) << step;  // up, then down
  }
  s.pct_start = 0.5;
  s.div = 10;
  s.div_final = 100;
  const LrPlan q = plan(s, 1.0, 4, 2);
  EXPECT_DOUBLE_EQ(scheduled_rate(q, 0), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_rate(q, 2), cos_anneal(0.1, 1.0, 0.5));
  EXPECT_DOUBLE_EQ(scheduled_rate(q, 4), 1.0);
  EXPECT_NEAR(scheduled_rate(q, 8), 0.01, 1e-15);
}

TEST(LrScheduleTest, ChecksNameTheSettingsAndSayWhy) {
  LrScheduleNames flags;
  flags.schedule = "--lr-schedule";
  flags.decay_rate = "--lr-decay-rate";
  flags.warmup_epochs = "--warmup-epochs";
  flags.reduce_lr_patience = "--reduce-lr-patience";
  flags.learning_rate = "--learning-rate";
  LrSchedule exp;
  exp.kind = LrScheduleKind::kExponential;
  exp.decay_epochs = 1;
  EXPECT_EQ(config_error([&] { check_lr_schedule(exp, 3, false, false, flags); }),
            "--lr-schedule exponential needs --lr-decay-rate R > 0 (ExponentialDecay's "
            "decay_rate: the rate is multiplied by R every lr_schedule.decay_epochs)");
  exp.decay_rate = 0.5;
  EXPECT_EQ(config_error([&] { check_lr_schedule(exp, 3, true, false, flags); }), "");
  exp.warmup_epochs = 1;
  EXPECT_EQ(config_error([&] { check_lr_schedule(exp, 3, false, false, flags); }),
            "--warmup-epochs is a warmup of the constant and cosine schedules (Keras's "
            "CosineDecay warmup_steps); --lr-schedule exponential has none in Keras");
  exp.warmup_epochs = 0;
  exp.alpha = 0.5;
  EXPECT_EQ(config_error([&] { check_lr_schedule(exp, 3, false, false); }),
            "lr_schedule.alpha is cosine's; lr_schedule.kind exponential does not use it");

  LrSchedule cosine;
  cosine.kind = LrScheduleKind::kCosine;
  EXPECT_EQ(config_error([&] { check_lr_schedule(cosine, 3, false, true, flags); }),
            "--reduce-lr-patience cannot be combined with --lr-schedule cosine: Keras's "
            "ReduceLROnPlateau sets the optimizer's learning rate, which an optimizer given a "
            "LearningRateSchedule refuses (TypeError: its rate is the schedule's at every "
            "step); use one or the other");
  EXPECT_EQ(config_error([&] { check_lr_schedule(LrSchedule{}, 3, false, true, flags); }), "");
  cosine.warmup_epochs = 3;
  EXPECT_EQ(config_error([&] { check_lr_schedule(cosine, 3, false, false, flags); }),
            "--warmup-epochs 3 must be shorter than the 3 epochs of training");
  cosine.warmup_epochs = 1;
  cosine.alpha = 1.5;
  EXPECT_NE(config_error([&] { check_lr_schedule(cosine, 3, false, false); }), "");

  LrSchedule step;
  step.kind = LrScheduleKind::kStep;
  step.boundaries = {1, 2};
  step.values = {0.1, 0.01, 0.001};
  EXPECT_EQ(config_error([&] { check_lr_schedule(step, 3, false, false); }), "");
  EXPECT_EQ(config_error([&] { check_lr_schedule(step, 3, true, false, flags); }),
            "--learning-rate is not used by --lr-schedule step: its rates are "
            "lr_schedule.values (PiecewiseConstantDecay's values)");
  step.values = {0.1, 0.01};
  EXPECT_NE(config_error([&] { check_lr_schedule(step, 3, false, false); }).find("not 2 and 2"),
            std::string::npos);
  step.values = {0.1, 0.01, 0.001};
  step.boundaries = {2, 1};
  EXPECT_NE(config_error([&] { check_lr_schedule(step, 3, false, false); }), "");
  step.boundaries = {1, 2};
  step.values = {0.1, 0, 0.001};
  EXPECT_NE(config_error([&] { check_lr_schedule(step, 3, false, false); }), "");

  LrSchedule one;
  one.kind = LrScheduleKind::kOneCycle;
  for (const double pct : {0.0, 1.0, std::nan("")}) {
    one.pct_start = pct;
    EXPECT_NE(config_error([&] { check_lr_schedule(one, 3, false, false); }), "") << pct;
  }
  one.pct_start = 0.25;
  one.div_final = -1;
  EXPECT_NE(config_error([&] { check_lr_schedule(one, 3, false, false); }), "");
  one.div_final = 1e5;
  one.warmup_epochs = 1;
  EXPECT_NE(config_error([&] {
              check_lr_schedule(one, 3, false, false);
            }).find("warms up over its first lr_schedule.pct_start of the steps"),
            std::string::npos);
}

/// Epochs that round to steps that cannot work are refused when planned.
TEST(LrScheduleTest, PlansRefuseEpochsThatRoundBadly) {
  LrSchedule step;
  step.kind = LrScheduleKind::kStep;
  step.boundaries = {1.1, 1.2};
  step.values = {0.1, 0.01, 0.001};
  EXPECT_NE(config_error([&] { plan(step, 0, 2, 3); }).find("epoch 1.2 is step 2"),
            std::string::npos);
  EXPECT_EQ(plan(step, 0, 100, 3).boundaries, (std::vector<int64_t>{110, 120}));
  LrSchedule cosine;
  cosine.kind = LrScheduleKind::kCosine;
  cosine.warmup_epochs = 2.9;
  EXPECT_NE(config_error([&] { plan(cosine, 0.1, 2, 3); }), "");
  EXPECT_EQ(plan(cosine, 0.1, 10, 3).decay_steps, 1);
}

TEST(LrScheduleTest, PlanInWords) {
  LrSchedule s;
  s.kind = LrScheduleKind::kCosine;
  s.warmup_epochs = 1;
  EXPECT_EQ(lr_plan_text(plan(s, 0.001, 12, 4)),
            "cosine decay from 0.001 to 0 over 36 steps after a linear warmup from 0 over 12 "
            "steps (1 epoch)");
  s = LrSchedule{};
  s.kind = LrScheduleKind::kOneCycle;
  EXPECT_EQ(lr_plan_text(plan(s, 0.01, 10, 4)),
            "one cycle over 40 steps: cosine from 0.0004 up to 0.01 over the first 0.25 of them "
            "(about 10 steps), then down to 1e-07");
}

/// train() sets every step's rate from the plan at the step's place in
/// training, reports the rate after each epoch's last step, and goes on
/// with the same rates after a stop mid-epoch.
TEST(LrScheduleTest, TrainSetsEveryStepsRateAndResumesMidSchedule) {
  LrSchedule s;
  s.kind = LrScheduleKind::kCosine;
  s.warmup_epochs = 1;
  TrainConfig cfg;
  cfg.epochs = 3;
  cfg.batch_size = 8;  // 3 steps an epoch, the last one short
  cfg.progress_every = 1;
  cfg.lr_plan = plan(s, 0.002, 3, 3);
  const Dataset data{at::rand({20, 1, 28, 28}), at::randint(0, 10, {20}, at::kLong)};
  const auto run = [&](int64_t stop_after) {
    torch::manual_seed(3);
    Model model(mnist_node_spec());
    Optimizer optimizer(model->parameters(), OptimizerKind::kAdam);
    std::vector<double> rates;
    std::vector<double> epoch_rates;
    std::atomic<bool> stop{false};
    TrainCallbacks cb;
    cb.stop = &stop;
    cb.on_batch = [&](const BatchProgress&) {
      rates.push_back(optimizer.learning_rate());
      stop = static_cast<int64_t>(rates.size()) == stop_after;
    };
    cb.on_epoch = [&](const EpochStats& e) { epoch_rates.push_back(e.learning_rate); };
    TrainState state;
    TrainOutcome outcome = train(model, optimizer, data, Dataset{}, cfg, state, cb);
    if (outcome == TrainOutcome::kStopped) {
      EXPECT_EQ(state.batch, stop_after % 3);
      stop = false;
      outcome = train(model, optimizer, data, Dataset{}, cfg, state, cb);
    }
    EXPECT_EQ(outcome, TrainOutcome::kFinished);
    EXPECT_EQ(optimizer.iterations(), 9);
    return std::pair{rates, epoch_rates};
  };
  const auto [rates, epoch_rates] = run(0);
  ASSERT_EQ(rates.size(), 9U);
  for (size_t i = 0; i < rates.size(); ++i) {
    EXPECT_EQ(rates[i], scheduled_rate(*cfg.lr_plan, static_cast<int64_t>(i))) << i;
  }
  EXPECT_EQ(rates[0], 0.0);
  EXPECT_EQ(rates[3], 0.002);
  EXPECT_EQ(epoch_rates,
            (std::vector<double>{scheduled_rate(*cfg.lr_plan, 3), scheduled_rate(*cfg.lr_plan, 6),
                                 scheduled_rate(*cfg.lr_plan, 9)}));
  EXPECT_EQ(run(4), run(0));  // stopped after epoch 2's first step

  cfg.lr_plan = plan(s, 0.002, 4, 3);
  Model model(mnist_node_spec());
  Optimizer optimizer(model->parameters(), OptimizerKind::kAdam);
  TrainState state;
  EXPECT_THROW(train(model, optimizer, data, Dataset{}, cfg, state, {}), ConfigError);
}

}  // namespace
}  // namespace mnist
