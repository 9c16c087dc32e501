// Learning-rate schedules (--lr-schedule; docs/training.md, "Learning-rate
// schedules"): the rate of every training step as a pure function of the
// step's place in training, so
// that a run resumed from a checkpoint (which holds that place) goes on with
// exactly the rates an unbroken run would have used.
//
// Each schedule is Keras 3's or fastai's (keras/src/optimizers/schedules/
// learning_rate_schedule.py; fastai/callback/schedule.py), with its epochs
// turned into steps (round(epochs * steps per epoch)):
//   constant     the rate; with a warmup, Keras's CosineDecay(0, D,
//                alpha=1, warmup_target=rate, warmup_steps=W): rate * s / W
//                for s < W, then the rate
//   exponential  ExponentialDecay(rate, decay_steps, decay_rate, staircase):
//                rate * decay_rate^(s / decay_steps), the exponent floored
//                with staircase
//   step         PiecewiseConstantDecay(boundaries, values): values[0] for
//                s <= boundaries[0], values[i] for boundaries[i-1] < s <=
//                boundaries[i], values[last] for s > boundaries[last]
//   cosine       CosineDecay(initial, decay_steps = total - W, alpha,
//                warmup_target, warmup_steps = W): without a warmup
//                (initial = rate) rate * ((1 - alpha) * 0.5 * (1 + cos(pi *
//                min(s, D) / D)) + alpha); with one, initial = 0 and
//                warmup_target = rate: rate * s / W for s < W, then the decay
//                from the rate over s - W, s clamped to D + W
//   onecycle     fit_one_cycle(lr_max = rate, div, div_final, pct_start):
//                pos = s / total; cosine annealing (start + (1 + cos(pi *
//                (1 - p))) * (end - start) / 2) from rate/div to the rate
//                over pos < pct_start (p = pos / pct_start), then from the
//                rate to rate/div_final (p = (pos - pct_start) / (1 -
//                pct_start))
// where s is the step: the number of steps taken before it in this run
// ((epoch - 1) * steps per epoch + batch), as Keras calls its schedule with
// the optimizer's iterations before their increment and fastai's position
// counts the batches done. Rates are computed in double and rounded to
// float32 where the optimizer applies them (Keras computes in float32).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mnist {

enum class LrScheduleKind { kConstant, kExponential, kStep, kCosine, kOneCycle };

/// "constant", "exponential", "step", "cosine", "onecycle".
const char* lr_schedule_name(LrScheduleKind kind);
std::optional<LrScheduleKind> parse_lr_schedule(const std::string& name);
std::vector<std::string> lr_schedule_names();

/// A schedule as asked for, its lengths in epochs. The peak (or only) rate
/// is the run's learning rate (`--learning-rate`, else the optimizer's),
/// except for `step`, whose rates are its values.
struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  double warmup_epochs = 0;        ///< constant, cosine: linear warmup from 0
  double decay_rate = 0;           ///< exponential: required, > 0
  double decay_epochs = 0;         ///< exponential: required, > 0
  bool staircase = false;          ///< exponential
  std::vector<double> boundaries;  ///< step: epochs, > 0, increasing
  std::vector<double> values;      ///< step: rates > 0, one more than boundaries
  double alpha = 0;                ///< cosine: the last rate as a fraction of the peak
  double pct_start = 0.25;         ///< onecycle (fastai's defaults)
  double div = 25;
  double div_final = 1e5;
};

/// Whether `s` is the rate of the optimizer as it is, unscheduled (constant,
/// no warmup): training takes the path it took before schedules existed.
bool is_unscheduled(const LrSchedule& s);

/// How messages name the settings (default: TrainSettings's fields; the CLI
/// passes its flags).
struct LrScheduleNames {
  std::string schedule = "lr_schedule.kind";
  std::string warmup_epochs = "lr_schedule.warmup_epochs";
  std::string decay_rate = "lr_schedule.decay_rate";
  std::string decay_epochs = "lr_schedule.decay_epochs";
  std::string staircase = "lr_schedule.staircase";
  std::string boundaries = "lr_schedule.boundaries";
  std::string values = "lr_schedule.values";
  std::string alpha = "lr_schedule.alpha";
  std::string pct_start = "lr_schedule.pct_start";
  std::string div = "lr_schedule.div";
  std::string div_final = "lr_schedule.div_final";
  std::string learning_rate = "learning_rate";
  std::string reduce_lr_patience = "callbacks.reduce_lr_patience";
};

/// Throws ConfigError, naming the settings by `names`, unless `s` is a
/// schedule that can run for `epochs` epochs: each parameter in its range,
/// the required ones given, none set (away from its default) that the
/// schedule does not use, a warmup shorter than the run, `step` without a
/// learning rate of its own (`learning_rate_given`: its values are the
/// rates), and no ReduceLROnPlateau (`reduce_lr`) beside a schedule: Keras's
/// sets optimizer.learning_rate, which an optimizer made with a
/// LearningRateSchedule refuses (a TypeError: "its learning rate is not
/// settable").
void check_lr_schedule(const LrSchedule& s,
                       int64_t epochs,
                       bool learning_rate_given,
                       bool reduce_lr,
                       const LrScheduleNames& names = {});

/// A schedule in steps, for one run.
struct LrPlan {
  LrSchedule schedule;
  double rate = 0;  ///< the run's learning rate (the peak; unused by step)
  int64_t steps_per_epoch = 0;
  int64_t total_steps = 0;
  int64_t warmup_steps = 0;         ///< constant, cosine
  int64_t decay_steps = 0;          ///< exponential; cosine: total - warmup
  std::vector<int64_t> boundaries;  ///< step
};

/// The plan of a checked schedule (check_lr_schedule) for `epochs` epochs of
/// `steps_per_epoch` steps at `rate`. Throws ConfigError when the epochs
/// round to steps that do not work: step boundaries on one step, a warmup
/// that leaves cosine no step to decay over.
LrPlan plan_lr_schedule(const LrSchedule& s, double rate, int64_t steps_per_epoch, int64_t epochs);

/// The rate of the step taken after `step` steps (0 for the first; `step`
/// = total_steps gives the rate after the last, which Keras's callbacks read
/// at the end of training).
double scheduled_rate(const LrPlan& plan, int64_t step);

/// The plan in words, for the log: "cosine decay from 0.001 to 0 over 36
/// steps after a linear warmup from 0 over 12 steps (1 epoch)".
std::string lr_plan_text(const LrPlan& plan);

}  // namespace mnist
