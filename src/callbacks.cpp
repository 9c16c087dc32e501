// Keras's EarlyStopping, ReduceLROnPlateau and ModelCheckpoint(save_best_only)
// as one state machine (callbacks.hpp).
#include "mnist/callbacks.hpp"

#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <spdlog/fmt/fmt.h>
#include <torch/utils.h>

#include "mnist/error.hpp"

using nlohmann::ordered_json;

namespace mnist {

namespace {

constexpr const char* kMonitorNames[] = {"val_loss", "val_acc", "loss", "acc"};
constexpr double kInf = std::numeric_limits<double>::infinity();

ordered_json number(double v) {
  return std::isinf(v) ? ordered_json(v > 0 ? "inf" : "-inf") : ordered_json(v);
}

double number(const ordered_json& doc, const char* key) {
  const auto it = doc.find(key);
  if (it == doc.end()) {
    throw FormatError(std::string("callback state: missing ") + key);
  }
  if (it->is_string()) {
    const std::string s = it->get<std::string>();
    if (s == "inf" || s == "-inf") {
      return s == "inf" ? kInf : -kInf;
    }
  }
  if (!it->is_number()) {
    throw FormatError(std::string("callback state: ") + key + " is not a number");
  }
  return it->get<double>();
}

int64_t count(const ordered_json& doc, const char* key) {
  const auto it = doc.find(key);
  if (it == doc.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
    throw FormatError(std::string("callback state: ") + key + " is not a count");
  }
  return it->get<int64_t>();
}

}  // namespace

const char* monitor_name(Monitor monitor) { return kMonitorNames[static_cast<int>(monitor)]; }

std::optional<Monitor> parse_monitor(const std::string& name) {
  for (int i = 0; i < 4; ++i) {
    if (name == kMonitorNames[i]) {
      return static_cast<Monitor>(i);
    }
  }
  return std::nullopt;
}

double monitor_value(const EpochStats& s, Monitor monitor) {
  switch (monitor) {
    case Monitor::kValLoss:
      return s.val_loss;
    case Monitor::kValAcc:
      return s.val_accuracy;
    case Monitor::kLoss:
      return s.loss;
    case Monitor::kAcc:
      return s.accuracy;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

bool monitor_maximises(Monitor monitor) {
  return monitor == Monitor::kValAcc || monitor == Monitor::kAcc;
}

bool monitor_needs_validation(Monitor monitor) {
  return monitor == Monitor::kValLoss || monitor == Monitor::kValAcc;
}

TrainingCallbacks::TrainingCallbacks(const CallbackConfig& config) : config_(config) {
  const double worst = monitor_maximises(config.monitor) ? -kInf : kInf;
  es_best_ = lr_best_ = best_ = worst;
}

bool TrainingCallbacks::active() const {
  return config_.early_stopping_patience > 0 || config_.reduce_lr_patience > 0 || config_.save_best;
}

bool TrainingCallbacks::improved(double value, double reference, double min_delta) const {
  // Keras: monitor_op(current - min_delta, best) with min_delta negated for
  // "min" (np.less), i.e. better by more than |min_delta|.
  return monitor_maximises(config_.monitor) ? value - min_delta > reference
                                            : value + min_delta < reference;
}

EpochDecision TrainingCallbacks::on_epoch_end(const EpochStats& stats, double learning_rate) {
  EpochDecision d;
  const double current = monitor_value(stats, config_.monitor);
  if (std::isnan(current)) {
    return d;
  }
  const int64_t epoch = stats.epoch;
  const char* name = monitor_name(config_.monitor);

  // ModelCheckpoint(save_best_only=True): monitor_op(current, best), no delta.
  if (config_.save_best && improved(current, best_, 0.0)) {
    best_ = current;
    best_epoch_ = epoch;
    d.save_best = true;
  }

  // ReduceLROnPlateau (cooldown 0, so never in cooldown).
  if (config_.reduce_lr_patience > 0) {
    if (improved(current, lr_best_, config_.reduce_lr_min_delta)) {
      lr_best_ = current;
      lr_wait_ = 0;
    } else if (++lr_wait_ >= config_.reduce_lr_patience) {
      // Keras compares with np.float32(min_lr).
      if (learning_rate > static_cast<float>(config_.min_learning_rate)) {
        const double next =
            std::max(learning_rate * config_.reduce_lr_factor, config_.min_learning_rate);
        d.new_learning_rate = next;
        d.learning_rate_reason = fmt::format(
            "{} did not improve by more than {} for {} epoch(s): learning rate {:g} -> {:g}", name,
            config_.reduce_lr_min_delta, lr_wait_, learning_rate, next);
      }
      lr_wait_ = 0;
    }
  }

  // EarlyStopping.
  if (config_.early_stopping_patience > 0) {
    if (config_.restore_best_weights && !es_has_weights_) {
      // Keras: if best weights were never set, the current ones are the best.
      d.keep_best_weights = true;
      es_has_weights_ = true;
      es_best_epoch_ = epoch;
    }
    ++es_wait_;
    if (improved(current, es_best_, config_.min_delta)) {
      es_best_ = current;
      es_best_epoch_ = epoch;
      d.keep_best_weights = config_.restore_best_weights;
      es_wait_ = 0;
    } else if (es_wait_ >= config_.early_stopping_patience && epoch > 1) {
      stopped_epoch_ = epoch;
      d.stop = true;
      d.stop_reason = fmt::format(
          "early stopping after epoch {}: {} did not improve by more than {} for {} epoch(s) "
          "(best {:.4f} at epoch {})",
          epoch, name, config_.min_delta, es_wait_, es_best_, es_best_epoch_);
    }
  }
  return d;
}

ordered_json TrainingCallbacks::state() const {
  return {{"monitor", monitor_name(config_.monitor)},
          {"early_stopping",
           {{"wait", es_wait_},
            {"best", number(es_best_)},
            {"best_epoch", es_best_epoch_},
            {"has_best_weights", es_has_weights_},
            {"stopped_epoch", stopped_epoch_}}},
          {"reduce_lr", {{"wait", lr_wait_}, {"best", number(lr_best_)}}},
          {"save_best", {{"best", number(best_)}, {"best_epoch", best_epoch_}}}};
}

void TrainingCallbacks::load_state(const ordered_json& doc) {
  if (!doc.is_object() || !doc.contains("early_stopping") || !doc.contains("reduce_lr") ||
      !doc.contains("save_best")) {
    throw FormatError("callback state: not an object with early_stopping, reduce_lr, save_best");
  }
  if (doc.value("monitor", "") != monitor_name(config_.monitor)) {
    throw FormatError("callback state: saved for another --monitor");
  }
  const ordered_json& es = doc["early_stopping"];
  es_wait_ = count(es, "wait");
  es_best_ = number(es, "best");
  es_best_epoch_ = count(es, "best_epoch");
  es_has_weights_ = es.value("has_best_weights", false);
  stopped_epoch_ = count(es, "stopped_epoch");
  lr_wait_ = count(doc["reduce_lr"], "wait");
  lr_best_ = number(doc["reduce_lr"], "best");
  best_ = number(doc["save_best"], "best");
  best_epoch_ = count(doc["save_best"], "best_epoch");
}

std::vector<at::Tensor> copy_parameters(Model& model) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> out;
  for (const auto& p : model->parameters()) {
    out.push_back(p.detach().to(at::kCPU).contiguous().clone());
  }
  return out;
}

void load_parameters(Model& model, const std::vector<at::Tensor>& saved) {
  torch::NoGradGuard no_grad;
  auto params = model->parameters();
  if (params.size() != saved.size()) {
    throw ConfigError("saved weights: " + std::to_string(saved.size()) +
                      " tensors, the model has " + std::to_string(params.size()));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].sizes() != saved[i].sizes()) {
      throw ConfigError("saved weights: tensor " + std::to_string(i) + " has another shape");
    }
    params[i].copy_(saved[i]);
  }
}

}  // namespace mnist
