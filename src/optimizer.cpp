// TF.js's named optimizers on libtorch tensors (optimizer.hpp has the formulas).
#include "mnist/optimizer.hpp"

#include <cmath>
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
  if (!(learning_rate > 0) || !std::isfinite(learning_rate)) {
    throw ConfigError("the learning rate must be a finite number above 0");
  }
  learning_rate_ = learning_rate;
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

}  // namespace mnist
