// Learning-rate schedules (lr_schedule.hpp): the checks, the plan in steps,
// and each schedule's rate as Keras 3 and fastai compute it.
#include "mnist/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

#include <spdlog/fmt/fmt.h>

#include "mnist/error.hpp"

namespace mnist {

namespace {

constexpr double kPi = 3.14159265358979323846;

/// fastai's sched_cos: cosine annealing from `start` (p = 0) to `end` (p = 1).
double annealed(double start, double end, double p) {
  return start + (1 + std::cos(kPi * (1 - p))) * (end - start) / 2;
}

/// Keras's CosineDecay._decay_function: from `from` to from * alpha over
/// `decay_steps` (step already clamped to decay_steps).
double cosine_decayed(double from, double alpha, double step, double decay_steps) {
  const double cosine = 0.5 * (1.0 + std::cos(kPi * (step / decay_steps)));
  return from * ((1 - alpha) * cosine + alpha);
}

int64_t steps_of(double epochs, int64_t steps_per_epoch) {
  return std::llround(epochs * static_cast<double>(steps_per_epoch));
}

std::string epochs_text(double epochs) {
  return fmt::format("{:g} epoch{}", epochs, epochs == 1 ? "" : "s");
}

}  // namespace

const char* lr_schedule_name(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::kConstant:
      return "constant";
    case LrScheduleKind::kExponential:
      return "exponential";
    case LrScheduleKind::kStep:
      return "step";
    case LrScheduleKind::kCosine:
      return "cosine";
    case LrScheduleKind::kOneCycle:
      return "onecycle";
  }
  return "?";
}

std::optional<LrScheduleKind> parse_lr_schedule(const std::string& name) {
  for (const auto kind :
       {LrScheduleKind::kConstant, LrScheduleKind::kExponential, LrScheduleKind::kStep,
        LrScheduleKind::kCosine, LrScheduleKind::kOneCycle}) {
    if (name == lr_schedule_name(kind)) {
      return kind;
    }
  }
  return std::nullopt;
}

std::vector<std::string> lr_schedule_names() {
  return {"constant", "exponential", "step", "cosine", "onecycle"};
}

bool is_unscheduled(const LrSchedule& s) {
  return s.kind == LrScheduleKind::kConstant && s.warmup_epochs == 0;
}

void check_lr_schedule(const LrSchedule& s,
                       int64_t epochs,
                       bool learning_rate_given,
                       bool reduce_lr,
                       const LrScheduleNames& names) {
  const std::string which = names.schedule + " " + lr_schedule_name(s.kind);
  const auto fail = [](const std::string& what) { throw ConfigError(what); };
  const auto finite = [](double x) { return std::isfinite(x); };
  // A parameter of another schedule, set: a mistake that would otherwise
  // go unnoticed.
  const LrSchedule d;
  const auto unused = [&](bool set, const std::string& name, const char* owner) {
    if (set) {
      fail(name + " is " + owner + "; " + which + " does not use it");
    }
  };
  const bool exponential = s.kind == LrScheduleKind::kExponential;
  const bool step = s.kind == LrScheduleKind::kStep;
  const bool cosine = s.kind == LrScheduleKind::kCosine;
  const bool onecycle = s.kind == LrScheduleKind::kOneCycle;
  if (!exponential) {
    unused(s.decay_rate != d.decay_rate, names.decay_rate, "exponential's");
    unused(s.decay_epochs != d.decay_epochs, names.decay_epochs, "exponential's");
    unused(s.staircase != d.staircase, names.staircase, "exponential's");
  }
  if (!step) {
    unused(!s.boundaries.empty(), names.boundaries, "step's");
    unused(!s.values.empty(), names.values, "step's");
  }
  if (!cosine) {
    unused(s.alpha != d.alpha, names.alpha, "cosine's");
  }
  if (!onecycle) {
    unused(s.pct_start != d.pct_start, names.pct_start, "onecycle's");
    unused(s.div != d.div, names.div, "onecycle's");
    unused(s.div_final != d.div_final, names.div_final, "onecycle's");
  }
  if (!(s.warmup_epochs >= 0) || !finite(s.warmup_epochs)) {
    fail(fmt::format("{} must be a number of at least 0, not {}", names.warmup_epochs,
                     s.warmup_epochs));
  }
  if (s.warmup_epochs > 0) {
    if (s.kind != LrScheduleKind::kConstant && !cosine) {
      fail(names.warmup_epochs + " is a warmup of the constant and cosine schedules (Keras's " +
           "CosineDecay warmup_steps); " + which +
           (onecycle ? " warms up over its first " + names.pct_start + " of the steps"
                     : " has none in Keras"));
    }
    if (!(s.warmup_epochs < static_cast<double>(epochs))) {
      fail(fmt::format("{} {:g} must be shorter than the {} of training", names.warmup_epochs,
                       s.warmup_epochs, epochs_text(static_cast<double>(epochs))));
    }
  }
  if (exponential) {
    if (!(s.decay_rate > 0) || !finite(s.decay_rate)) {
      fail(which + " needs " + names.decay_rate +
           " R > 0 (ExponentialDecay's decay_rate: the rate is multiplied by R every " +
           names.decay_epochs + ")");
    }
    if (!(s.decay_epochs > 0) || !finite(s.decay_epochs)) {
      fail(which + " needs " + names.decay_epochs +
           " E > 0 (ExponentialDecay's decay_steps, in epochs)");
    }
  }
  if (step) {
    if (learning_rate_given) {
      fail(names.learning_rate + " is not used by " + which + ": its rates are " + names.values +
           " (PiecewiseConstantDecay's values)");
    }
    if (s.values.size() != s.boundaries.size() + 1 || s.boundaries.empty()) {
      fail(
          fmt::format("{} needs {} (epochs) and one more rate in {} than boundaries "
                      "(PiecewiseConstantDecay's), not {} and {}",
                      which, names.boundaries, names.values, s.boundaries.size(), s.values.size()));
    }
    for (size_t i = 0; i < s.boundaries.size(); ++i) {
      const double b = s.boundaries[i];
      if (!(b > 0) || !finite(b) || (i > 0 && !(b > s.boundaries[i - 1]))) {
        fail(
            fmt::format("{}: {:g} is not an epoch after the one before it (boundaries "
                        "are increasing numbers above 0)",
                        names.boundaries, b));
      }
    }
    for (const double v : s.values) {
      if (!(v > 0) || !finite(v)) {
        fail(fmt::format("{}: {:g} is not a learning rate (a number above 0)", names.values, v));
      }
    }
  }
  if (cosine && (!(s.alpha >= 0 && s.alpha <= 1))) {
    fail(fmt::format("{} must be between 0 and 1 (a fraction of the peak rate), not {:g}",
                     names.alpha, s.alpha));
  }
  if (onecycle) {
    if (!(s.pct_start > 0 && s.pct_start < 1)) {
      fail(fmt::format("{} must be between 0 and 1 (exclusive), not {:g}", names.pct_start,
                       s.pct_start));
    }
    for (const auto& [v, name] : {std::pair{s.div, &names.div}, {s.div_final, &names.div_final}}) {
      if (!(v > 0) || !finite(v)) {
        fail(fmt::format("{} must be a number above 0, not {:g}", *name, v));
      }
    }
  }
  if (reduce_lr && !is_unscheduled(s)) {
    fail(names.reduce_lr_patience + " cannot be combined with " + which +
         (s.kind == LrScheduleKind::kConstant ? " and a warmup" : "") +
         ": Keras's ReduceLROnPlateau sets the optimizer's learning rate, which an optimizer "
         "given a LearningRateSchedule refuses (TypeError: its rate is the schedule's at every "
         "step); use one or the other");
  }
}

LrPlan plan_lr_schedule(const LrSchedule& s, double rate, int64_t steps_per_epoch, int64_t epochs) {
  LrPlan p;
  p.schedule = s;
  p.rate = rate;
  p.steps_per_epoch = steps_per_epoch;
  p.total_steps = steps_per_epoch * epochs;
  p.warmup_steps = steps_of(s.warmup_epochs, steps_per_epoch);
  switch (s.kind) {
    case LrScheduleKind::kExponential:
      p.decay_steps = std::max<int64_t>(1, steps_of(s.decay_epochs, steps_per_epoch));
      break;
    case LrScheduleKind::kCosine:
      p.decay_steps = p.total_steps - p.warmup_steps;
      if (p.decay_steps < 1) {
        throw ConfigError(fmt::format(
            "a warmup of {} ({} steps of {} an epoch) leaves the cosine decay no step of the {}",
            epochs_text(s.warmup_epochs), p.warmup_steps, steps_per_epoch, p.total_steps));
      }
      break;
    case LrScheduleKind::kStep:
      for (const double b : s.boundaries) {
        const int64_t at = steps_of(b, steps_per_epoch);
        if (!p.boundaries.empty() && at <= p.boundaries.back()) {
          throw ConfigError(fmt::format(
              "step boundaries: epoch {:g} is step {}, as is the boundary before it ({} steps an "
              "epoch); give boundaries further apart",
              b, at, steps_per_epoch));
        }
        p.boundaries.push_back(at);
      }
      break;
    default:
      break;
  }
  return p;
}

double scheduled_rate(const LrPlan& plan, int64_t step) {
  const LrSchedule& s = plan.schedule;
  const double rate = plan.rate;
  const auto at = static_cast<double>(step);
  switch (s.kind) {
    case LrScheduleKind::kConstant:
      // CosineDecay(0, D, alpha=1, warmup_target=rate, warmup_steps=W).
      return step < plan.warmup_steps ? rate * at / static_cast<double>(plan.warmup_steps) : rate;
    case LrScheduleKind::kExponential: {
      double p = at / static_cast<double>(plan.decay_steps);
      if (s.staircase) {
        p = std::floor(p);
      }
      return rate * std::pow(s.decay_rate, p);
    }
    case LrScheduleKind::kStep: {
      // values[i] while step <= boundaries[i]; the last one after them all.
      size_t i = 0;
      while (i < plan.boundaries.size() && step > plan.boundaries[i]) {
        ++i;
      }
      return s.values[i];
    }
    case LrScheduleKind::kCosine: {
      const auto decay = static_cast<double>(plan.decay_steps);
      const auto warmup = static_cast<double>(plan.warmup_steps);
      if (plan.warmup_steps == 0) {  // warmup_target None: decay from the rate
        return cosine_decayed(rate, s.alpha, std::min(at, decay), decay);
      }
      const double clamped = std::min(at, decay + warmup);
      if (clamped < warmup) {  // from initial_learning_rate 0 to the target
        return (rate - 0.0) * (clamped / warmup) + 0.0;
      }
      return cosine_decayed(rate, s.alpha, clamped - warmup, decay);
    }
    case LrScheduleKind::kOneCycle: {
      // combine_scheds([pct, 1 - pct], ...): the second phase from pos >=
      // pct on, and for any pos beyond 1 (pos 1 is the end value).
      const double pos = std::min(1.0, at / static_cast<double>(plan.total_steps));
      if (pos < s.pct_start) {
        return annealed(rate / s.div, rate, pos / s.pct_start);
      }
      return annealed(rate, rate / s.div_final, (pos - s.pct_start) / (1 - s.pct_start));
    }
  }
  return rate;
}

std::string lr_plan_text(const LrPlan& plan) {
  const LrSchedule& s = plan.schedule;
  const double rate = plan.rate;
  const std::string warmup = plan.warmup_steps > 0
                                 ? fmt::format(" after a linear warmup from 0 over {} steps ({})",
                                               plan.warmup_steps, epochs_text(s.warmup_epochs))
                                 : "";
  switch (s.kind) {
    case LrScheduleKind::kConstant:
      return fmt::format("constant {:g}{}", rate, warmup);
    case LrScheduleKind::kExponential:
      return fmt::format("exponential decay from {:g}, times {:g} every {} steps ({}){}", rate,
                         s.decay_rate, plan.decay_steps, epochs_text(s.decay_epochs),
                         s.staircase ? ", at once (staircase)" : ", continuously");
    case LrScheduleKind::kStep: {
      std::string text = fmt::format("{:g}", s.values[0]);
      for (size_t i = 0; i < plan.boundaries.size(); ++i) {
        text += fmt::format(", {:g} after step {} (epoch {:g})", s.values[i + 1],
                            plan.boundaries[i], s.boundaries[i]);
      }
      return "step: " + text;
    }
    case LrScheduleKind::kCosine:
      return fmt::format("cosine decay from {:g} to {:g} over {} steps{}", rate, rate * s.alpha,
                         plan.decay_steps, warmup);
    case LrScheduleKind::kOneCycle: {
      const auto rise = std::llround(s.pct_start * static_cast<double>(plan.total_steps));
      return fmt::format(
          "one cycle over {} steps: cosine from {:g} up to {:g} over the first {:g} of them "
          "(about {} steps), then down to {:g}",
          plan.total_steps, rate / s.div, rate, s.pct_start, rise, rate / s.div_final);
    }
  }
  return "";
}

}  // namespace mnist
