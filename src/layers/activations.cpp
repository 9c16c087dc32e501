// Activations as tfjs-layers 4.22 names and computes them: the "activation"
// field's functions (activations.ts, with tfjs-core's ops) and the
// activation layers (advanced_activations.ts): ReLU, LeakyReLU, ELU,
// ThresholdedReLU, PReLU, Softmax.
#include <cmath>

#include <ATen/ATen.h>

#include "layers/layer_util.hpp"

namespace mnist {

namespace {

struct ActivationName {
  Activation activation;
  const char* name;        ///< as TF.js writes it
  const char* camel_case;  ///< as TF.js's own class map names it, or nullptr
};

constexpr ActivationName kActivations[] = {
    {Activation::kLinear, "linear", nullptr},
    {Activation::kRelu, "relu", nullptr},
    {Activation::kSoftmax, "softmax", nullptr},
    {Activation::kSigmoid, "sigmoid", nullptr},
    {Activation::kTanh, "tanh", nullptr},
    {Activation::kElu, "elu", nullptr},
    {Activation::kSelu, "selu", nullptr},
    {Activation::kRelu6, "relu6", nullptr},
    {Activation::kHardSigmoid, "hard_sigmoid", "hardSigmoid"},
    {Activation::kSoftplus, "softplus", nullptr},
    {Activation::kSoftsign, "softsign", nullptr},
    {Activation::kSwish, "swish", nullptr},
    {Activation::kMish, "mish", nullptr},
    {Activation::kGelu, "gelu", nullptr},
    {Activation::kLogSoftmax, "log_softmax", "logSoftmax"},
};

/// tfjs-core softplus: log(1 + exp(x)), exp(x) where that underflows and x
/// where it overflows (thresholds log(float32 epsilon) + 2).
/// Each branch sees only its own range, so that no unused branch overflows
/// (an infinity there would make the gradient NaN).
at::Tensor tfjs_softplus(const at::Tensor& x) {
  const double threshold = std::log(1.1920928955078125e-7) + 2.0;  // about -13.9
  return at::where(x < threshold, x.clamp_max(threshold).exp(),
                   at::where(x > -threshold, x, x.clamp(threshold, -threshold).exp().log1p()));
}

}  // namespace

const char* activation_name(Activation activation) {
  for (const auto& a : kActivations) {
    if (a.activation == activation) {
      return a.name;
    }
  }
  return "linear";
}

std::optional<Activation> parse_activation(const std::string& name) {
  for (const auto& a : kActivations) {
    if (name == a.name || (a.camel_case != nullptr && name == a.camel_case)) {
      return a.activation;
    }
  }
  return std::nullopt;
}

std::string activation_names() {
  std::string names;
  for (const auto& a : kActivations) {
    names += (names.empty() ? "" : ", ") + std::string(a.name);
  }
  return names;
}

at::Tensor activate(at::Tensor x, Activation a) {
  // tfjs-layers activations.ts: softmax and logSoftmax along axis -1, the
  // last of TF.js's order: the channels, which an image (rank 4, NCHW here)
  // keeps in dim 1; every other rank is in TF.js's order (docs/design.md,
  // "Layers"), so its last dim.
  const int64_t last = x.dim() == 4 ? 1 : x.dim() - 1;
  switch (a) {
    case Activation::kLinear:
      return x;
    case Activation::kRelu:
      return x.relu_();
    case Activation::kSoftmax:
      return at::softmax(x, last);
    case Activation::kSigmoid:
      return x.sigmoid_();
    case Activation::kTanh:
      return x.tanh_();
    case Activation::kElu:
      return at::elu(x);
    case Activation::kSelu:
      return at::selu(x);  // tfjs-core's constants: 1.0507..., 1.6732...
    case Activation::kRelu6:
      return at::clamp(x, 0.0, 6.0);
    case Activation::kHardSigmoid:
      // tfjs-layers backend hardSigmoid: clip(0.2 x + 0.5, 0, 1).
      return at::clamp(x * 0.2 + 0.5, 0.0, 1.0);
    case Activation::kSoftplus:
      return tfjs_softplus(x);
    case Activation::kSoftsign:
      return x / (x.abs() + 1.0);
    case Activation::kSwish:
      return at::sigmoid(x) * x;
    case Activation::kMish:
      return x * tfjs_softplus(x).tanh();
    case Activation::kGelu:
      return at::gelu(x);  // x * Phi(x), through erf
    case Activation::kLogSoftmax:
      return at::log_softmax(x, last);
  }
  return x;
}

at::Tensor activate_copy(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::kRelu:
      return at::relu(x);
    case Activation::kSigmoid:
      return at::sigmoid(x);
    case Activation::kTanh:
      return at::tanh(x);
    default:
      return activate(x, a);  // the others make a new tensor
  }
}

namespace layers {

namespace {

/// ReLU: relu, clipped at max_value when it has one. TF.js 4.22 reads no
/// negative_slope or threshold (Keras's), so a layer with either is refused:
/// it would compute another function in TF.js.
class ReLU : public ElementwiseOf<ReLU> {
 public:
  explicit ReLU(const ordered_json& c) {
    if (find(c, "max_value") != nullptr) {
      max_value_ = get_number(c, "max_value", 0.0);
      has_max_ = true;
    }
    for (const char* key : {"negative_slope", "threshold"}) {
      if (get_number(c, key, 0.0) != 0.0) {
        fail(std::string("field \"") + key + "\" is " + find(c, key)->dump() +
             ": TF.js's ReLU layer reads only max_value, so this model would predict one thing "
             "in TF.js and another where it was made; only 0 is supported");
      }
    }
  }
  const char* class_name() const override { return "ReLU"; }
  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& /*context*/) const override {
    const at::Tensor& x = inputs[0];
    if (has_max_ && !(at::GradMode::is_enabled() && x.requires_grad())) {
      // No gradient wanted (a frozen base, inference): one pass, in place
      // where no one else holds the input; the same values (NaN stays NaN
      // either way).
      return overwritable(x) ? x.clamp_(0.0, max_value_) : at::clamp(x, 0.0, max_value_);
    }
    // relu, then clipByValue, as TF.js: its gradient at exactly 0 is relu's, 0.
    const at::Tensor y = at::relu(x);
    return has_max_ ? at::clamp(y, 0.0, max_value_) : y;
  }
  void write_config(ordered_json& c) const override {
    c["max_value"] = has_max_ ? ordered_json(max_value_) : ordered_json(nullptr);
  }

 private:
  double max_value_ = 0.0;
  bool has_max_ = false;
};

/// LeakyReLU: x, or alpha * x below 0 (TF.js's default alpha 0.3). Keras 3
/// names alpha "negative_slope", which TF.js does not read: it is read as
/// alpha here, and a save writes it as alpha (refresh_config).
class LeakyReLU : public ElementwiseOf<LeakyReLU> {
 public:
  explicit LeakyReLU(const ordered_json& c) {
    alpha_ = get_number(c, "negative_slope", 0.3);
    alpha_ = get_number(c, "alpha", alpha_);
  }
  const char* class_name() const override { return "LeakyReLU"; }
  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& /*context*/) const override {
    const at::Tensor& x = inputs[0];
    return at::where(x > 0, x, x * alpha_);
  }
  void write_config(ordered_json& c) const override { c["alpha"] = alpha_; }
  void refresh_config(ordered_json& saved) const override {
    if (saved.contains("negative_slope")) {
      saved.erase("negative_slope");
      saved["alpha"] = alpha_;
    }
  }

 private:
  double alpha_ = 0.3;
};

/// ELU: x, or exp(x) - 1 below 0. TF.js 4.22's ELU layer refuses an alpha
/// other than 1, and so does this one.
class ELU : public ElementwiseOf<ELU> {
 public:
  explicit ELU(const ordered_json& c) {
    if (const double alpha = get_number(c, "alpha", 1.0); alpha != 1.0) {
      fail("field \"alpha\" is " + find(c, "alpha")->dump() +
           ": TF.js's ELU layer supports only alpha 1 (it refuses to load this model)");
    }
  }
  const char* class_name() const override { return "ELU"; }
  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& /*context*/) const override {
    return at::elu(inputs[0]);
  }
  void write_config(ordered_json& c) const override { c["alpha"] = 1.0; }
};

/// ThresholdedReLU: x where x > theta, else 0 (default theta 1).
class ThresholdedReLU : public ElementwiseOf<ThresholdedReLU> {
 public:
  explicit ThresholdedReLU(const ordered_json& c) : theta_(get_number(c, "theta", 1.0)) {}
  const char* class_name() const override { return "ThresholdedReLU"; }
  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& /*context*/) const override {
    const at::Tensor& x = inputs[0];
    return x * (x > theta_).to(x.scalar_type());
  }
  void write_config(ordered_json& c) const override { c["theta"] = theta_; }

 private:
  double theta_;
};

/// The axis of an NCHW tensor (rank 4) that TF.js's NHWC axis `axis`
/// (negative from the end) names; other ranks keep TF.js's order.
int64_t internal_axis(int64_t axis, int64_t rank) {
  if (axis < 0) {
    axis += rank;
  }
  if (rank == 4) {
    constexpr int64_t kNchw[] = {0, 2, 3, 1};
    return kNchw[axis];
  }
  return axis;
}

/// Softmax over one axis (TF.js's default: 1) or over several axes. TF.js
/// 4.22 computes a one-axis softmax along the last axis only ("Softmax along
/// a non-last dimension is not yet supported"), so another one is refused.
class Softmax : public LayerOf<Softmax> {
 public:
  explicit Softmax(const ordered_json& c) : axes_(get_axes(c, "axis", {1}, 1, 4)) {}
  const char* class_name() const override { return "Softmax"; }
  bool ends_in_softmax() const override { return axes_.size() == 1 && rank_ == 2; }
  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*w*/) override {
    const Shape& in = single(inputs);
    rank_ = static_cast<int64_t>(in.size()) + 1;
    for (const int64_t a : axes_) {
      if (a == 0 || a < -rank_ + 1 || a >= rank_) {
        fail("axis " + std::to_string(a) + " is not an axis of its input " + shape_text(in) +
             " other than the batch");
      }
    }
    if (axes_.size() == 1 && axes_[0] != -1 && axes_[0] != rank_ - 1) {
      fail("axis " + std::to_string(axes_[0]) + " of its input " + shape_text(in) +
           " is not the last: TF.js computes a softmax along the last axis only (it fails on "
           "this model)");
    }
    return in;
  }
  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& context) const override {
    const at::Tensor& x = inputs[0];
    if (axes_.size() == 1) {  // the last axis of TF.js's order: the channels
      if (context.logits && ends_in_softmax()) {
        return x;
      }
      return at::softmax(x, internal_axis(-1, x.dim()));
    }
    // tfjs-layers: exp(x - logSumExp(x, axes, keepDims)).
    std::vector<int64_t> dims;
    for (const int64_t a : axes_) {
      dims.push_back(internal_axis(a, x.dim()));
    }
    return (x - x.logsumexp(dims, /*keepdim=*/true)).exp();
  }
  void write_config(ordered_json& c) const override {
    c["axis"] = axes_.size() == 1 ? ordered_json(axes_[0]) : ordered_json(axes_);
  }

 private:
  std::vector<int64_t> axes_;
  int64_t rank_ = 0;  ///< with the batch axis; set by build
};

/// PReLU: x, or alpha * x below 0, alpha a weight of the input's shape
/// (without the batch axis) of size 1 along shared_axes. Kept in TF.js's
/// layout ([h,w,c]); an NCHW input sees it as [c,h,w].
class PReLU : public LayerOf<PReLU> {
 public:
  explicit PReLU(const ordered_json& c) : shared_(get_axes(c, "shared_axes", {})) {
    // TF.js's default alpha_initializer: zeros (a Constant's value is
    // kept; a loaded model's alpha comes from its weights anyway).
    if (const ordered_json* init = find(c, "alpha_initializer")) {
      const ordered_json* cls = find(*init, "class_name");
      const ordered_json* config = find(*init, "config");
      if (cls != nullptr && *cls == "Constant" && config != nullptr) {
        initializer_ = Initializer::kConstant;
        value_ = get_number(*config, "value", 0.0);
      }
    }
    read_regularizers(c, {{"alpha_regularizer", "alpha"}}, penalties_, training_problem);
  }
  const char* class_name() const override { return "PReLU"; }
  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& weights) override {
    const Shape& in = single(inputs);
    Shape alpha = in;
    for (const int64_t a : shared_) {
      if (a < 1 || a > static_cast<int64_t>(in.size())) {
        fail("shared axis " + std::to_string(a) + " is not an axis of its input " + shape_text(in));
      }
      alpha[static_cast<size_t>(a - 1)] = 1;
    }
    WeightSpec w{"alpha",      alpha, WeightLayout::kVector,
                 initializer_, true,  penalty_of(penalties_, "alpha")};
    w.value = value_;
    weights.push_back(w);
    return in;
  }
  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& w,
                  const CallContext& /*context*/) const override {
    const at::Tensor& x = inputs[0];
    const at::Tensor alpha = x.dim() == 4 ? w[0].permute({2, 0, 1}) : w[0];
    return at::where(x < 0, x * alpha, x);
  }
  void write_config(ordered_json& c) const override {
    c["alpha_initializer"] = zeros_initializer();
    c["alpha_regularizer"] = nullptr;
    c["alpha_constraint"] = nullptr;
    c["shared_axes"] = shared_.empty() ? ordered_json(nullptr) : ordered_json(shared_);
  }

 private:
  std::vector<int64_t> shared_;
  Initializer initializer_ = Initializer::kZeros;
  double value_ = 0.0;
  std::vector<std::pair<std::string, Penalty>> penalties_;
};

}  // namespace

std::vector<LayerClass> activation_layers() {
  return {{"ReLU", make<ReLU>},   {"LeakyReLU", make<LeakyReLU>},
          {"ELU", make<ELU>},     {"ThresholdedReLU", make<ThresholdedReLU>},
          {"PReLU", make<PReLU>}, {"Softmax", make<Softmax>}};
}

}  // namespace layers

}  // namespace mnist
