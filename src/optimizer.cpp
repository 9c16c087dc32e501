// TF.js's named optimizers on libtorch tensors (optimizer.hpp has the formulas).
#include "mnist/optimizer.hpp"

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include "mnist/error.hpp"

namespace mnist {

namespace {

constexpr const char* kNames[] = {"rmsprop", "adam", "sgd", "adagrad", "adadelta", "adamax"};

/// b^t as TF.js computes it: a float32 scalar multiplied by b after every step.
double float_power(double b, int64_t t) {
  float acc = static_cast<float>(b);
  for (int64_t i = 1; i < t; ++i) {
    acc *= static_cast<float>(b);
  }
  return acc;
}

}  // namespace

const char* optimizer_name(OptimizerKind kind) { return kNames[static_cast<int>(kind)]; }

std::optional<OptimizerKind> parse_optimizer(const std::string& name) {
  for (int i = 0; i < static_cast<int>(std::size(kNames)); ++i) {
    if (name == kNames[i]) {
      return static_cast<OptimizerKind>(i);
    }
  }
  return std::nullopt;
}

std::vector<std::string> optimizer_names() { return {std::begin(kNames), std::end(kNames)}; }

OptimizerDefaults optimizer_defaults(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kRmsProp:
      return {0.001, 0.9, 0, 0, 1e-7, 0};
    case OptimizerKind::kAdam:
      return {0.001, 0, 0.9, 0.999, 1e-7, 0};
    case OptimizerKind::kSgd:
      return {0.01, 0, 0, 0, 0, 0};
    case OptimizerKind::kAdagrad:
      return {0.01, 0, 0, 0, 1e-7, 0.1};
    case OptimizerKind::kAdadelta:
      return {1.0, 0.95, 0, 0, 1e-7, 0};
    case OptimizerKind::kAdamax:
      return {0.002, 0, 0.9, 0.999, 1e-7, 0};
  }
  return {};
}

Optimizer::Optimizer(std::vector<at::Tensor> params, OptimizerKind kind, double learning_rate)
    : params_(std::move(params)), kind_(kind), hyper_(optimizer_defaults(kind)) {
  learning_rate_ = learning_rate > 0 ? learning_rate : hyper_.learning_rate;
  const double initial = kind == OptimizerKind::kAdagrad ? hyper_.initial_accumulator : 0.0;
  for (int s = 0; s < slot_count(); ++s) {
    for (const auto& p : params_) {
      // Same strides as the parameter (channels-last stays channels-last).
      slots_.push_back(at::full_like(p.detach(), initial, at::MemoryFormat::Preserve));
    }
  }
}

int Optimizer::slot_count() const {
  switch (kind_) {
    case OptimizerKind::kSgd:
      return 0;
    case OptimizerKind::kRmsProp:
    case OptimizerKind::kAdagrad:
      return 1;
    default:
      return 2;
  }
}

void Optimizer::set_learning_rate(double learning_rate) {
  // 0 is a rate (a schedule's warmup starts there, as Keras's does): the
  // step then updates the optimizer's state and leaves the weights.
  if (!(learning_rate >= 0) || !std::isfinite(learning_rate)) {
    throw ConfigError("the learning rate must be a finite number of at least 0");
  }
  learning_rate_ = learning_rate;
}

bool Optimizer::step_is_replayable() const {
  return kind_ != OptimizerKind::kAdam && kind_ != OptimizerKind::kAdamax;
}

void Optimizer::step() {
  torch::NoGradGuard no_grad;
  const size_t n = params_.size();
  const double lr = learning_rate_;
  const OptimizerDefaults& h = hyper_;
  const int64_t t = iterations_ + 1;
  for (size_t i = 0; i < n; ++i) {
    at::Tensor& w = params_[i];
    const at::Tensor& g = w.grad();
    if (!g.defined()) {
      continue;
    }
    switch (kind_) {
      case OptimizerKind::kRmsProp: {
        at::Tensor& ms = slots_[i];
        ms.mul_(h.rho).addcmul_(g, g, 1.0 - h.rho);
        w.addcdiv_(g, (ms + h.epsilon).sqrt_(), -lr);
        break;
      }
      case OptimizerKind::kAdam: {
        at::Tensor& m = slots_[i];
        at::Tensor& v = slots_[n + i];
        m.mul_(h.beta1).add_(g, 1.0 - h.beta1);
        v.mul_(h.beta2).addcmul_(g, g, 1.0 - h.beta2);
        const at::Tensor m_hat = m / (1.0 - float_power(h.beta1, t));
        const at::Tensor v_hat = v / (1.0 - float_power(h.beta2, t));
        w.addcdiv_(m_hat, v_hat.sqrt_().add_(h.epsilon), -lr);
        break;
      }
      case OptimizerKind::kSgd:
        w.add_(g, -lr);
        break;
      case OptimizerKind::kAdagrad: {
        at::Tensor& a = slots_[i];
        a.addcmul_(g, g);
        w.addcdiv_(g, (a + h.epsilon).sqrt_(), -lr);
        break;
      }
      case OptimizerKind::kAdadelta: {
        at::Tensor& a = slots_[i];
        at::Tensor& d = slots_[n + i];
        // tfjs-core divides by the accumulator as it was before this
        // gradient (it assigns the new one after computing the update).
        const at::Tensor u = (d + h.epsilon).sqrt_().div_((a + h.epsilon).sqrt_()).mul_(g);
        a.mul_(h.rho).addcmul_(g, g, 1.0 - h.rho);
        d.mul_(h.rho).addcmul_(u, u, 1.0 - h.rho);
        w.add_(u, -lr);
        break;
      }
      case OptimizerKind::kAdamax: {
        at::Tensor& m = slots_[i];
        at::Tensor& norm = slots_[n + i];
        m.mul_(h.beta1).add_(g, 1.0 - h.beta1);
        at::maximum_out(norm, norm * h.beta2, g.abs());
        w.addcdiv_(m, norm + h.epsilon, -lr / (1.0 - float_power(h.beta1, t)));
        break;
      }
    }
  }
  ++iterations_;
}

void Optimizer::load_state(const std::vector<at::Tensor>& saved, int64_t iterations) {
  if (saved.size() != slots_.size()) {
    throw ConfigError("optimizer state holds " + std::to_string(saved.size()) + " tensors, " +
                      optimizer_name(kind_) + " on this model has " +
                      std::to_string(slots_.size()));
  }
  if (iterations < 0) {
    throw ConfigError("optimizer state: negative step count");
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < saved.size(); ++i) {
    if (saved[i].sizes() != slots_[i].sizes()) {
      throw ConfigError("optimizer state tensor " + std::to_string(i) +
                        " does not match its parameter's shape");
    }
    slots_[i].copy_(saved[i]);
  }
  iterations_ = iterations;
}

void Optimizer::zero_grad() {
  for (auto& p : params_) {
    p.mutable_grad().reset();
  }
}

std::optional<std::vector<std::string>> tfjs_slot_names(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kRmsProp:
      return std::vector<std::string>{"rms"};
    case OptimizerKind::kAdam:
      return std::vector<std::string>{"m", "v"};
    case OptimizerKind::kSgd:
      return std::vector<std::string>{};
    case OptimizerKind::kAdagrad:
      return std::vector<std::string>{"accumulator"};
    case OptimizerKind::kAdadelta:
      return std::vector<std::string>{"accum_grad", "accum_var"};
    case OptimizerKind::kAdamax:
      return std::nullopt;
  }
  return std::nullopt;
}

std::string load_tfjs_state(Optimizer& optimizer,
                            const std::vector<std::string>& param_names,
                            const std::string& class_name,
                            const nlohmann::ordered_json& config,
                            const std::vector<std::pair<std::string, at::Tensor>>& weights) {
  // The class names of tfjs-core's optimizers (their static className).
  static const std::map<std::string, OptimizerKind> classes = {
      {"RMSProp", OptimizerKind::kRmsProp},   {"Adam", OptimizerKind::kAdam},
      {"SGD", OptimizerKind::kSgd},           {"Adagrad", OptimizerKind::kAdagrad},
      {"Adadelta", OptimizerKind::kAdadelta}, {"Adamax", OptimizerKind::kAdamax}};
  const OptimizerKind kind = optimizer.kind();
  const std::string ours = optimizer_name(kind);
  if (!class_name.empty()) {
    const auto it = classes.find(class_name);
    if (it == classes.end() || it->second != kind) {
      return "it is the state of TF.js's " + class_name + ", this training's optimizer is " + ours;
    }
  }
  const auto suffixes = tfjs_slot_names(kind);
  if (!suffixes) {
    return "TF.js saves no state of " + ours;
  }
  // tfjs-layers getOptimizer('rmsprop') has no momentum and is not
  // centered; a state saved with either is another optimizer's.
  if (kind == OptimizerKind::kRmsProp && config.is_object()) {
    const auto momentum = config.find("momentum");
    const auto centered = config.find("centered");
    if ((momentum != config.end() && momentum->is_number() && momentum->get<double>() != 0.0) ||
        (centered != config.end() && *centered == true)) {
      return "its RMSProp has momentum or is centered (" + config.dump() + "), " + ours +
             " has neither";
    }
  }
  std::map<std::string, at::Tensor> by_name(weights.begin(), weights.end());
  const auto iter = by_name.find("iter");
  if (iter == by_name.end() || iter->second.dim() != 0 || iter->second.item<int64_t>() < 0) {
    return "it has no step count (\"iter\")";
  }
  const std::vector<at::Tensor>& params = optimizer.params();
  if (param_names.size() != params.size()) {
    throw std::invalid_argument("load_tfjs_state: one name per parameter");
  }
  std::vector<at::Tensor> slots = optimizer.slots();
  for (size_t s = 0; s < suffixes->size(); ++s) {
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string name = param_names[i] + "/" + (*suffixes)[s];
      const auto it = by_name.find(name);
      if (it != by_name.end() && it->second.sizes() == params[i].sizes()) {
        slots[s * params.size() + i] = it->second;
      } else if (params[i].requires_grad()) {
        return "it has no \"" + name + "\" of the model's shape";
      }
    }
  }
  optimizer.load_state(slots, iter->second.item<int64_t>());
  return "";
}

}  // namespace mnist
