// Normalization as tfjs-layers 4.22 computes and saves it (normalization.ts):
// BatchNormalization over the last axis of TF.js's order (an image's
// channels, a flat input's features, or the last axis of a tensor of another
// rank, such as a Reshape's [rows, features]), batch statistics and TF.js's
// moving-average update in training, the moving statistics otherwise;
// LayerNormalization.
#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "layers/kernels.hpp"
#include "layers/layer_util.hpp"

namespace mnist::layers {

namespace {

/// Whether a BatchNormalization call can take the fused path below: float32
/// on the CPU with its features innermost in memory (a channels-last image
/// batch, or a contiguous tensor of another rank: [rows, features] in
/// memory), and no gradient wanted from it (a frozen layer whose input needs
/// none, as a fine-tune's base; or inference). Anything else, training
/// gradients included, takes the tensor operations, whose backward autograd
/// derives.
bool fused_batch_norm_applies(const at::Tensor& x, const std::vector<at::Tensor>& w) {
  if (x.scalar_type() != at::kFloat || !x.device().is_cpu() || x.dim() < 2) {
    return false;
  }
  if (!(x.dim() == 4 ? x.is_contiguous(at::MemoryFormat::ChannelsLast) : x.is_contiguous())) {
    return false;
  }
  if (at::GradMode::is_enabled()) {
    if (x.requires_grad()) {
      return false;
    }
    for (const at::Tensor& t : w) {
      if (t.requires_grad()) {
        return false;
      }
    }
  }
  return true;
}

/// The batch's mean and biased variance of each feature of x, as float32
/// [features] (kernels.hpp).
std::pair<at::Tensor, at::Tensor> batch_moments(const at::Tensor& x, int64_t features) {
  at::Tensor mean = at::empty({features}, at::kFloat);
  at::Tensor variance = at::empty({features}, at::kFloat);
  kernels::batch_moments(x.data_ptr<float>(), x.numel() / features, features,
                         mean.data_ptr<float>(), variance.data_ptr<float>());
  return {mean, variance};
}

/// y = (x - mean) * (gamma / sqrt(variance + epsilon)) + beta for each
/// feature (the factor computed in double, rounded once), one float32 pass
/// over x laid out [rows, features], written into a tensor of x's shape and
/// memory format (x itself where x is overwritable). gamma or beta undefined:
/// a layer without scale or center.
at::Tensor batch_normalize(const at::Tensor& x,
                           const at::Tensor& mean,
                           const at::Tensor& variance,
                           const at::Tensor& gamma,
                           const at::Tensor& beta,
                           double epsilon) {
  const int64_t features = x.size(x.dim() == 4 ? 1 : x.dim() - 1);
  const int64_t rows = x.numel() / features;
  const at::Tensor m = mean.to(at::kFloat).contiguous();
  const at::Tensor scale =
      (gamma.defined() ? gamma.to(at::kDouble) : at::ones({features}, at::kDouble))
          .div((variance.to(at::kDouble) + epsilon).sqrt())
          .to(at::kFloat)
          .contiguous();
  const at::Tensor offset =
      (beta.defined() ? beta.to(at::kFloat) : at::zeros({features}, at::kFloat)).contiguous();
  at::Tensor y = overwritable(x) ? x : at::empty_like(x);
  kernels::batch_normalize(x.data_ptr<float>(), rows, features, m.data_ptr<float>(),
                           scale.data_ptr<float>(), offset.data_ptr<float>(), y.data_ptr<float>());
  return y;
}

class BatchNormalization : public LayerOf<BatchNormalization> {
 public:
  explicit BatchNormalization(const ordered_json& c) {
    if (const ordered_json* axis = find(c, "axis")) {
      // TF.js writes -1; Keras writes [3] after building the layer ([2] for
      // a rank-3 input). Whether it is the last axis, build checks.
      const ordered_json& a = axis->is_array() && axis->size() == 1 ? (*axis)[0] : *axis;
      if (!a.is_number_integer() || a.get<int64_t>() < -1) {
        fail("field \"axis\" is " + axis->dump() + " (only the last axis, -1, is supported)");
      }
      axis_ = a.get<int64_t>();
    }
    momentum_ = get_number(c, "momentum", momentum_);
    epsilon_ = get_number(c, "epsilon", epsilon_);
    center_ = get_bool(c, "center", true);
    scale_ = get_bool(c, "scale", true);
    read_regularizers(c, {{"gamma_regularizer", "gamma"}, {"beta_regularizer", "beta"}}, penalties_,
                      training_problem);
  }
  const char* class_name() const override { return "BatchNormalization"; }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& weights) override {
    const Shape& in = single(inputs);
    if (!(epsilon_ > 0.0) || !std::isfinite(epsilon_) || !(momentum_ >= 0.0) ||
        !(momentum_ <= 1.0)) {
      fail("epsilon must be above 0 and momentum in [0, 1]");
    }
    if (axis_ != -1 && axis_ != static_cast<int64_t>(in.size())) {
      fail("axis " + std::to_string(axis_) + " is not the last axis of its input " +
           shape_text(in) + " (only the last axis, -1, is supported)");
    }
    const int64_t features = in.back();
    // TF.js's defaults: gamma ones, beta zeros, moving mean 0, variance 1;
    // the moving statistics take no gradient, whatever `trainable`.
    if (scale_) {
      weights.push_back({"gamma",
                         {features},
                         WeightLayout::kVector,
                         Initializer::kOnes,
                         true,
                         penalty_of(penalties_, "gamma")});
    }
    if (center_) {
      weights.push_back({"beta",
                         {features},
                         WeightLayout::kVector,
                         Initializer::kZeros,
                         true,
                         penalty_of(penalties_, "beta")});
    }
    weights.push_back(
        {"moving_mean", {features}, WeightLayout::kVector, Initializer::kZeros, false, {}});
    weights.push_back(
        {"moving_variance", {features}, WeightLayout::kVector, Initializer::kOnes, false, {}});
    return in;
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& w,
                  const CallContext& context) const override {
    // tfjs-layers normalization.ts: in training, the batch's mean and
    // (biased, as tf.moments computes it) variance over every axis but the
    // channels, and each moving statistic moves to it by (1 - momentum):
    // moving -= (moving - batch) * (1 - momentum). Otherwise the moving ones.
    const at::Tensor& x = inputs[0];
    const size_t stats = w.size() - 2;
    const at::Tensor& moving_mean = w[stats];
    const at::Tensor& moving_variance = w[stats + 1];
    // The features' dim: TF.js's last axis, an image's channels (dim 1 of
    // NCHW); any other rank keeps TF.js's order, so its last dim. The
    // statistics reduce every other dim.
    const int64_t features = x.dim() == 4 ? 1 : x.dim() - 1;
    std::vector<int64_t> axes;
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (d != features) {
        axes.push_back(d);
      }
    }
    std::vector<int64_t> broadcast(static_cast<size_t>(x.dim()), 1);
    broadcast[static_cast<size_t>(features)] = x.size(features);
    const at::Tensor gamma = scale_ ? w[0] : at::Tensor();
    const at::Tensor beta = center_ ? w[scale_ ? 1 : 0] : at::Tensor();
    if (fused_batch_norm_applies(x, w) && x.numel() > 0) {
      torch::NoGradGuard no_grad;
      if (!context.training) {
        return batch_normalize(x, moving_mean, moving_variance, gamma, beta, epsilon_);
      }
      const auto [mean, variance] = batch_moments(x, x.size(features));
      const double decay = 1.0 - momentum_;
      moving_mean.sub_((moving_mean - mean).mul_(decay));
      moving_variance.sub_((moving_variance - variance).mul_(decay));
      return batch_normalize(x, mean, variance, gamma, beta, epsilon_);
    }
    at::Tensor mean;
    at::Tensor variance;
    if (context.training) {
      mean = x.mean(axes, /*keepdim=*/true);
      variance = (x - mean).square().mean(axes, /*keepdim=*/true);
      torch::NoGradGuard no_grad;
      const double decay = 1.0 - momentum_;
      // In the moving statistics' type: float32, or float64 for a model
      // converted to it (mnist_fixture's float64 reference).
      const auto type = moving_mean.scalar_type();
      moving_mean.sub_((moving_mean - mean.detach().reshape({-1}).to(type)).mul_(decay));
      moving_variance.sub_(
          (moving_variance - variance.detach().reshape({-1}).to(type)).mul_(decay));
    } else {
      mean = moving_mean.view(broadcast);
      variance = moving_variance.view(broadcast);
    }
    at::Tensor y = (x - mean) * (variance + epsilon_).rsqrt();
    size_t next = 0;
    if (scale_) {
      y = y * w[next++].view(broadcast);
    }
    if (center_) {
      y = y + w[next].view(broadcast);
    }
    return y;
  }

  void write_config(ordered_json& c) const override {
    c["axis"] = axis_;
    c["momentum"] = momentum_;
    c["epsilon"] = epsilon_;
    c["center"] = center_;
    c["scale"] = scale_;
    c["beta_initializer"] = zeros_initializer();
    c["gamma_initializer"] = ones_initializer();
    c["moving_mean_initializer"] = zeros_initializer();
    c["moving_variance_initializer"] = ones_initializer();
    c["beta_regularizer"] = nullptr;
    c["gamma_regularizer"] = nullptr;
    c["beta_constraint"] = nullptr;
    c["gamma_constraint"] = nullptr;
  }

 private:
  int64_t axis_ = -1;  ///< -1, or the index of the last axis (checked by build)
  double momentum_ = 0.99;
  double epsilon_ = 1e-3;
  bool center_ = true;  ///< a beta (offset) weight
  bool scale_ = true;   ///< a gamma (scale) weight
  std::vector<std::pair<std::string, Penalty>> penalties_;
};

/// LayerNormalization: each example normalised over `axis` (TF.js's
/// default: the last) with its own mean and biased variance, then
/// gamma * x + beta, gamma and beta of the normalised axes' shape (in TF.js's
/// order: the model computes in it here).
class LayerNormalization : public LayerOf<LayerNormalization> {
 public:
  explicit LayerNormalization(const ordered_json& c)
      : axes_(get_axes(c, "axis", {-1}, 1, 3, "a list of up to 3")) {
    epsilon_ = get_number(c, "epsilon", epsilon_);
    center_ = get_bool(c, "center", true);
    scale_ = get_bool(c, "scale", true);
    read_regularizers(c, {{"gamma_regularizer", "gamma"}, {"beta_regularizer", "beta"}}, penalties_,
                      training_problem);
  }
  const char* class_name() const override { return "LayerNormalization"; }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& weights) override {
    const Shape& in = single(inputs);
    if (!(epsilon_ > 0.0) || !std::isfinite(epsilon_)) {
      fail("epsilon must be above 0");
    }
    const auto rank = static_cast<int64_t>(in.size()) + 1;
    resolved_.clear();
    Shape param;
    for (int64_t a : axes_) {
      const int64_t axis = a < 0 ? a + rank : a;
      if (axis < 1 || axis >= rank ||
          std::find(resolved_.begin(), resolved_.end(), axis) != resolved_.end()) {
        fail("axis " + std::to_string(a) + " is not a distinct axis of its input " +
             shape_text(in) + " other than the batch");
      }
      resolved_.push_back(axis);
      param.push_back(in[static_cast<size_t>(axis - 1)]);
    }
    if (scale_) {
      weights.push_back({"gamma", param, WeightLayout::kVector, Initializer::kOnes, true,
                         penalty_of(penalties_, "gamma")});
    }
    if (center_) {
      weights.push_back({"beta", param, WeightLayout::kVector, Initializer::kZeros, true,
                         penalty_of(penalties_, "beta")});
    }
    return in;
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& w,
                  const CallContext& /*context*/) const override {
    const bool image = inputs[0].dim() == 4;
    const at::Tensor x = image ? inputs[0].permute({0, 2, 3, 1}) : inputs[0];  // TF.js's order
    const at::Tensor mean = x.mean(resolved_, /*keepdim=*/true);
    const at::Tensor variance = (x - mean).square().mean(resolved_, /*keepdim=*/true);
    at::Tensor y = (x - mean) * (variance + epsilon_).rsqrt();
    std::vector<int64_t> broadcast(static_cast<size_t>(x.dim()), 1);
    for (const int64_t axis : resolved_) {
      broadcast[static_cast<size_t>(axis)] = x.size(axis);
    }
    size_t next = 0;
    if (scale_) {
      y = y * w[next++].reshape(broadcast);
    }
    if (center_) {
      y = y + w[next].reshape(broadcast);
    }
    return image ? y.permute({0, 3, 1, 2}) : y;
  }

  void write_config(ordered_json& c) const override {
    c["axis"] = axes_.size() == 1 ? ordered_json(axes_[0]) : ordered_json(axes_);
    c["epsilon"] = epsilon_;
    c["center"] = center_;
    c["scale"] = scale_;
    c["beta_initializer"] = zeros_initializer();
    c["gamma_initializer"] = ones_initializer();
    c["beta_regularizer"] = nullptr;
    c["gamma_regularizer"] = nullptr;
  }

 private:
  std::vector<int64_t> axes_;
  std::vector<int64_t> resolved_;  ///< axes_ counted from the batch axis; set by build
  double epsilon_ = 1e-3;
  bool center_ = true;
  bool scale_ = true;
  std::vector<std::pair<std::string, Penalty>> penalties_;
};

}  // namespace

std::vector<LayerClass> normalization_layers() {
  return {{"BatchNormalization", make<BatchNormalization>},
          {"LayerNormalization", make<LayerNormalization>}};
}

}  // namespace mnist::layers
