// RMSprop with TF.js's semantics (epsilon inside the square root).
#include "mnist/optimizer.hpp"

#include <string>

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include "mnist/error.hpp"

namespace mnist {

RmsProp::RmsProp(std::vector<at::Tensor> params, const RmsPropOptions& options)
    : params_(std::move(params)), options_(options) {
  mean_squares_.reserve(params_.size());
  for (const auto& p : params_) {
    // Same strides as the parameter (channels-last stays channels-last).
    mean_squares_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
  }
}

void RmsProp::step() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) {
      continue;
    }
    at::Tensor& ms = mean_squares_[i];
    ms.mul_(options_.rho).addcmul_(g, g, 1.0 - options_.rho);
    p.addcdiv_(g, (ms + options_.epsilon).sqrt_(), -options_.learning_rate);
  }
}

void RmsProp::load_mean_squares(const std::vector<at::Tensor>& saved) {
  if (saved.size() != mean_squares_.size()) {
    throw ConfigError("optimizer state holds " + std::to_string(saved.size()) +
                      " tensors, the model has " + std::to_string(mean_squares_.size()));
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < saved.size(); ++i) {
    if (saved[i].sizes() != mean_squares_[i].sizes()) {
      throw ConfigError("optimizer state tensor " + std::to_string(i) +
                        " does not match its parameter's shape");
    }
    mean_squares_[i].copy_(saved[i]);
  }
}

void RmsProp::zero_grad() {
  for (auto& p : params_) {
    p.mutable_grad().reset();
  }
}

}  // namespace mnist
