// The core layers as tfjs-layers 4.22 computes and saves them (core.ts):
// Dense, Flatten (in TF.js's NHWC order), Dropout, Activation; and a
// functional model's InputLayer (engine/input_layer.ts).
#include <cmath>

#include <ATen/ATen.h>

#include "layers/layer_util.hpp"

namespace mnist::layers {

namespace {

Activation effective(Activation activation, const CallContext& context) {
  return context.logits && activation == Activation::kSoftmax ? Activation::kLinear : activation;
}

class Dense : public LayerOf<Dense> {
 public:
  explicit Dense(const ordered_json& c) {
    units_ = get_int(c, "units");
    activation_ = get_activation(c);
    use_bias_ = get_bool(c, "use_bias", true);
    read_regularizers(c, {{"kernel_regularizer", "kernel"}, {"bias_regularizer", "bias"}},
                      penalties_, training_problem);
  }
  const char* class_name() const override { return "Dense"; }
  bool ends_in_softmax() const override { return activation_ == Activation::kSoftmax; }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& weights) override {
    // tfjs-layers core.ts: a kernel [last axis, units], applied along the
    // last axis of an input of any rank (K.dot: every other axis folded into
    // the rows of one matMul), which becomes `units` long.
    const Shape& in = single(inputs);
    if (units_ < 1) {
      fail("units must be at least 1");
    }
    weights.push_back({"kernel",
                       {units_, in.back()},
                       WeightLayout::kDenseKernel,
                       Initializer::kGlorotNormal,
                       true,
                       penalty_of(penalties_, "kernel")});
    if (use_bias_) {
      weights.push_back({"bias",
                         {units_},
                         WeightLayout::kVector,
                         Initializer::kZeros,
                         true,
                         penalty_of(penalties_, "bias")});
    }
    Shape out = in;
    out.back() = units_;
    // Along an image or rows, `units` values for each: bounded as a model's input is
    // (docs/formats.md, "Sizes are bounded"), as the merge layers' outputs (a
    // flat output is bounded by the kernel, which the model bounds).
    constexpr int64_t kMaxOutputValues = int64_t{1} << 24;
    int64_t values = 1;
    for (const int64_t d : out) {
      values = d > 0 && values > kMaxOutputValues / d ? kMaxOutputValues + 1 : values * d;
    }
    if (in.size() > 1 && values > kMaxOutputValues) {
      fail("its output " + shape_text(out) + " would hold more than " +
           std::to_string(kMaxOutputValues) + " values per example");
    }
    return out;
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& w,
                  const CallContext& context) const override {
    // at::linear contracts the last dim: TF.js's last axis for every rank but
    // an image's (NCHW), whose channels are dim 1; its NHWC view is the
    // channels-last memory as it is, and the result goes back to NCHW.
    const at::Tensor& x = inputs[0];
    const bool image = x.dim() == 4;
    at::Tensor y =
        at::linear(image ? x.permute({0, 2, 3, 1}) : x, w[0], use_bias_ ? w[1] : at::Tensor());
    return activate(image ? y.permute({0, 3, 1, 2}) : y, effective(activation_, context));
  }

  void write_config(ordered_json& c) const override {
    c["units"] = units_;
    c["activation"] = activation_name(activation_);
    c["use_bias"] = use_bias_;
    c["kernel_initializer"] = variance_scaling();
    c["bias_initializer"] = zeros_initializer();
    c["kernel_regularizer"] = nullptr;
    c["bias_regularizer"] = nullptr;
    c["activity_regularizer"] = nullptr;
    c["kernel_constraint"] = nullptr;
    c["bias_constraint"] = nullptr;
  }

 private:
  int64_t units_ = 0;
  Activation activation_ = Activation::kLinear;
  bool use_bias_ = true;
  std::vector<std::pair<std::string, Penalty>> penalties_;
};

class Flatten : public LayerOf<Flatten> {
 public:
  explicit Flatten(const ordered_json& c) { require_channels_last(c); }
  const char* class_name() const override { return "Flatten"; }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*weights*/) override {
    int64_t n = 1;
    for (int64_t d : single(inputs)) {
      n *= d;
    }
    return {n};
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*weights*/,
                  const CallContext& /*context*/) const override {
    // TF.js flattens NHWC: index h*W*C + w*C + c (free for channels-last).
    const at::Tensor& x = inputs[0];
    return x.dim() == 4 ? x.permute({0, 2, 3, 1}).flatten(1) : x.flatten(1);
  }

  void write_config(ordered_json& /*c*/) const override {}
};

/// TF.js's Dropout in training: zero a fraction `rate` of `x`, scale the
/// rest by 1 / (1 - rate). libtorch's CPU bernoulli_ draws one random number
/// per element, serially (~2 ms of a ~55 ms step here); for rates that are a
/// multiple of 1/256 (0.25 and 0.5 in mnist-node) one 24-bit draw gives three
/// uniform mask bytes instead, with exactly the same keep probability.
at::Tensor train_dropout(const at::Tensor& x, double rate) {
  const double levels = rate * 256.0;
  if (x.is_cuda() || rate <= 0.0 || levels != std::floor(levels)) {
    return at::dropout(x, rate, /*train=*/true);
  }
  const int64_t n = x.numel();
  const at::Tensor draws =
      at::empty({(n + 2) / 3}, x.options().dtype(at::kInt)).random_(0, int64_t{1} << 24);
  // The three low-order bytes of each draw (the first three in memory on a
  // little-endian machine, the last three on a big-endian one).
  constexpr int64_t kLowBytes = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 0 : 1;
  const at::Tensor bytes =
      draws.view(at::kByte).view({-1, 4}).narrow(1, kLowBytes, 3).reshape({-1});
  const at::Tensor keep = bytes.narrow(0, 0, n).ge(static_cast<int64_t>(levels)).view(x.sizes());
  return x * keep.to(x.scalar_type()).mul_(1.0 / (1.0 - rate));
}

class Dropout : public LayerOf<Dropout> {
 public:
  explicit Dropout(const ordered_json& c) {
    const ordered_json* rate = find(c, "rate");
    if (rate == nullptr || !rate->is_number()) {
      fail("field \"rate\" must be a number");
    }
    rate_ = rate->get<double>();
    if (find(c, "noise_shape") != nullptr) {
      fail("field \"noise_shape\" is not supported");
    }
  }
  const char* class_name() const override { return "Dropout"; }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*weights*/) override {
    if (!(rate_ >= 0.0 && rate_ < 1.0)) {
      fail("rate must be in [0, 1)");
    }
    return single(inputs);
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*weights*/,
                  const CallContext& context) const override {
    return context.training ? train_dropout(inputs[0], rate_) : inputs[0];
  }

  void write_config(ordered_json& c) const override {
    c["rate"] = rate_;
    c["noise_shape"] = nullptr;
    c["seed"] = nullptr;
  }

 private:
  double rate_ = 0.0;
};

class ActivationLayer : public ElementwiseOf<ActivationLayer> {
 public:
  explicit ActivationLayer(const ordered_json& c) : activation_(get_activation(c)) {}
  const char* class_name() const override { return "Activation"; }
  bool ends_in_softmax() const override { return activation_ == Activation::kSoftmax; }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*weights*/,
                  const CallContext& context) const override {
    // Not in place: in a graph, other layers may read the same input.
    return activate_copy(inputs[0], effective(activation_, context));
  }

  void write_config(ordered_json& c) const override {
    c["activation"] = activation_name(activation_);
  }

 private:
  Activation activation_;
};

/// A functional model's input (tfjs-layers engine/input_layer.ts): its output
/// is the model's input. Its shape is the model's (the reader takes it from
/// this layer's config); a sparse input is refused.
class InputLayer : public ElementwiseOf<InputLayer> {
 public:
  explicit InputLayer(const ordered_json& c) {
    if (get_bool(c, "sparse", false)) {
      fail("field \"sparse\" is true (sparse inputs are not supported)");
    }
  }
  const char* class_name() const override { return "InputLayer"; }
  bool has_trainable_field() const override { return false; }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*weights*/,
                  const CallContext& /*context*/) const override {
    return inputs[0];
  }

  void write_config(ordered_json& c) const override {
    c["batch_input_shape"] = ordered_json::array({nullptr});
    for (const int64_t d : input_shape) {
      c["batch_input_shape"].push_back(d);
    }
    c["dtype"] = "float32";
    c["sparse"] = false;
    c["name"] = name;
  }
};

}  // namespace

std::vector<LayerClass> core_layers() {
  return {{"InputLayer", make<InputLayer>},
          {"Flatten", make<Flatten>},
          {"Dropout", make<Dropout>},
          {"Dense", make<Dense>},
          {"Activation", make<ActivationLayer>}};
}

}  // namespace mnist::layers
