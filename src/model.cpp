// Sequential models: shape inference and checks, the forward pass with TF.js
// semantics (same padding, NHWC flatten), TF.js initialisers and summary.
#include "mnist/model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
#include "mnist/onednn.hpp"

namespace mnist {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[null";
  for (int64_t d : shape) {
    out << "," << d;
  }
  out << "]";
  return out.str();
}

namespace {

std::string pair_text(const std::array<int64_t, 2>& pair) {
  return "[" + std::to_string(pair[0]) + "," + std::to_string(pair[1]) + "]";
}

/// tfjs-layers utils/layer_utils.ts printRow: each field is cut or padded so
/// that it ends at its column position; a field that reaches its column
/// gets its last character replaced by one separating space.
std::string format_row(const std::vector<std::string>& fields,
                       const std::vector<size_t>& positions) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) {
      line = line.substr(0, line.size() - 1) + " ";
    }
    line += fields[i];
    line = line.substr(0, positions[i]);
    line += std::string(positions[i] - line.size(), ' ');
  }
  return line;
}

/// TF's output size and (before, after) padding along one axis.
struct AxisPlan {
  int64_t out = 0;
  int64_t pad_before = 0;
  int64_t pad_after = 0;
};

AxisPlan plan_axis(int64_t in, int64_t window, int64_t stride, bool same) {
  AxisPlan p;
  if (same) {
    p.out = (in + stride - 1) / stride;
    const int64_t total = std::max<int64_t>((p.out - 1) * stride + window - in, 0);
    p.pad_before = total / 2;
    p.pad_after = total - p.pad_before;
  } else {
    p.out = in >= window ? (in - window) / stride + 1 : 0;
  }
  return p;
}

[[noreturn]] void bad_layer(const Layer& layer, const std::string& what) {
  throw FormatError("layer " + layer.name + " (" + class_name(layer.kind) + "): " + what);
}

at::Tensor activate(at::Tensor x, Activation a) {
  switch (a) {
    case Activation::kLinear:
      return x;
    case Activation::kRelu:
      return x.relu_();
    case Activation::kSoftmax:
      return at::softmax(x, /*dim=*/1);  // channels: dim 1 in NCHW and [N,C]
    case Activation::kSigmoid:
      return x.sigmoid_();
    case Activation::kTanh:
      return x.tanh_();
  }
  return x;
}

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

/// at::conv2d's padding: none (TF's is applied by pad_hw, as it may be
/// uneven).
constexpr std::array<int64_t, 2> kNoPadding{0, 0};

/// The extent of a kernel of `size` taps `dilation` apart (TF.js's
/// conv_util getEffectiveFilterSize).
int64_t dilated(int64_t size, int64_t dilation) { return (size - 1) * dilation + 1; }

/// The (rows, columns) plans of a convolution's or pooling layer's window on
/// a height x width input (pooling layers have dilation 1: the Model sets it).
std::pair<AxisPlan, AxisPlan> plan_window(const Layer& l, int64_t height, int64_t width) {
  return {plan_axis(height, dilated(l.kernel[0], l.dilation[0]), l.strides[0], l.same_padding),
          plan_axis(width, dilated(l.kernel[1], l.dilation[1]), l.strides[1], l.same_padding)};
}

bool is_conv(LayerKind kind) {
  return kind == LayerKind::kConv2D || kind == LayerKind::kDepthwiseConv2D ||
         kind == LayerKind::kSeparableConv2D;
}

/// Glorot uniform (TF.js's glorotUniform: VarianceScaling with scale 1,
/// mode fan_avg, distribution uniform): U(-limit, limit), limit
/// sqrt(6 / (fan_in + fan_out)).
void glorot_uniform_(at::Tensor weight, int64_t fan_in, int64_t fan_out) {
  torch::NoGradGuard no_grad;
  const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  weight.uniform_(-limit, limit);
}

/// Pads H and W of an NCHW tensor by (before, after) per axis with `value`.
at::Tensor pad_hw(at::Tensor x, const AxisPlan& h, const AxisPlan& w, double value) {
  if (h.pad_before + h.pad_after + w.pad_before + w.pad_after == 0) {
    return x;
  }
  return at::constant_pad_nd(x, {w.pad_before, w.pad_after, h.pad_before, h.pad_after}, value);
}

}  // namespace

const char* class_name(LayerKind kind) {
  // In LayerKind's order.
  static constexpr const char* kNames[] = {"Conv2D",
                                           "MaxPooling2D",
                                           "AveragePooling2D",
                                           "Flatten",
                                           "Dropout",
                                           "Dense",
                                           "Activation",
                                           "GlobalAveragePooling2D",
                                           "GlobalMaxPooling2D",
                                           "BatchNormalization",
                                           "DepthwiseConv2D",
                                           "SeparableConv2D"};
  return kNames[static_cast<size_t>(kind)];
}

const char* activation_name(Activation activation) {
  // In Activation's order.
  static constexpr const char* kNames[] = {"linear", "relu", "softmax", "sigmoid", "tanh"};
  return kNames[static_cast<size_t>(activation)];
}

ModelSpec mnist_node_spec(bool with_dropout, int64_t classes) {
  auto conv = [](const char* name, int64_t filters) {
    Layer l;
    l.kind = LayerKind::kConv2D;
    l.name = name;
    l.units = filters;
    l.kernel = {3, 3};
    l.activation = Activation::kRelu;
    return l;
  };
  auto pool = [](const char* name) {
    Layer l;
    l.kind = LayerKind::kMaxPooling2D;
    l.name = name;
    l.kernel = {2, 2};
    l.strides = {2, 2};
    return l;
  };
  auto dropout = [](const char* name, double rate) {
    Layer l;
    l.kind = LayerKind::kDropout;
    l.name = name;
    l.rate = rate;
    return l;
  };
  auto dense = [](const char* name, int64_t units, Activation a) {
    Layer l;
    l.kind = LayerKind::kDense;
    l.name = name;
    l.units = units;
    l.activation = a;
    return l;
  };
  Layer flatten;
  flatten.kind = LayerKind::kFlatten;
  flatten.name = "flatten_Flatten1";
  ModelSpec spec;
  spec.layers = {conv("conv2d_Conv2D1", 32),
                 conv("conv2d_Conv2D2", 32),
                 pool("max_pooling2d_MaxPooling2D1"),
                 conv("conv2d_Conv2D3", 64),
                 conv("conv2d_Conv2D4", 64),
                 pool("max_pooling2d_MaxPooling2D2"),
                 flatten,
                 dropout("dropout_Dropout1", 0.25),
                 dense("dense_Dense1", 512, Activation::kRelu),
                 dropout("dropout_Dropout2", 0.5),
                 dense("dense_Dense2", classes, Activation::kSoftmax)};
  if (!with_dropout) {
    std::vector<Layer> kept;
    for (Layer& l : spec.layers) {
      if (l.kind != LayerKind::kDropout) {
        kept.push_back(std::move(l));
      }
    }
    spec.layers = std::move(kept);
  }
  return spec;
}

ModelImpl::ModelImpl(ModelSpec spec) : spec_(std::move(spec)) {
  if (spec_.layers.empty()) {
    throw FormatError("the model has no layers");
  }
  std::vector<int64_t> shape = {28, 28, 1};  // NHWC without batch
  kernels_.resize(spec_.layers.size());
  biases_.resize(spec_.layers.size());
  moving_mean_.resize(spec_.layers.size());
  moving_variance_.resize(spec_.layers.size());
  pointwise_.resize(spec_.layers.size());
  std::set<std::string> names;
  for (size_t i = 0; i < spec_.layers.size(); ++i) {
    Layer& l = spec_.layers[i];
    // Weights are found by layer name ("<layer>/kernel"), and libtorch
    // refuses empty or dotted parameter names.
    if (l.name.empty() || l.name.find('.') != std::string::npos) {
      bad_layer(l, "a layer name must be non-empty and without '.' (found \"" + l.name + "\")");
    }
    if (!names.insert(l.name).second) {
      bad_layer(l, "two layers have this name (layer names must be unique)");
    }
    l.input_shape = shape;
    const bool image = shape.size() == 3;
    switch (l.kind) {
      case LayerKind::kConv2D:
      case LayerKind::kDepthwiseConv2D:
      case LayerKind::kSeparableConv2D:
      case LayerKind::kMaxPooling2D:
      case LayerKind::kAveragePooling2D: {
        if (!image) {
          bad_layer(l, "needs an image input [h,w,c], got " + shape_text(shape));
        }
        if (l.kernel[0] < 1 || l.kernel[1] < 1 || l.strides[0] < 1 || l.strides[1] < 1) {
          bad_layer(l, "kernel/pool size and strides must be at least 1");
        }
        const bool conv = is_conv(l.kind);
        if (!conv) {
          l.dilation = {1, 1};  // pooling has none
        }
        if (l.dilation[0] < 1 || l.dilation[1] < 1) {
          bad_layer(l, "dilation_rate must be at least 1");
        }
        // tfjs-core conv2d and depthwiseConv2d: "Either strides or dilations
        // must be 1".
        if ((l.dilation[0] > 1 || l.dilation[1] > 1) && (l.strides[0] > 1 || l.strides[1] > 1)) {
          bad_layer(l, "dilation_rate " + pair_text(l.dilation) + " with strides " +
                           pair_text(l.strides) +
                           ": either the strides or the dilation rate must be 1 (as in TF.js)");
        }
        const auto [h, w] = plan_window(l, shape[0], shape[1]);
        if (h.out < 1 || w.out < 1) {
          bad_layer(l, "input " + shape_text(shape) + " is smaller than the window");
        }
        const int64_t in = shape[2];
        int64_t channels = in;
        if (l.kind == LayerKind::kDepthwiseConv2D || l.kind == LayerKind::kSeparableConv2D) {
          if (l.depth_multiplier < 1) {
            bad_layer(l, "depth_multiplier must be at least 1");
          }
          // [depth_multiplier,in,kh,kw]: its TF.js view is [kh,kw,in,dm].
          kernels_[i] =
              register_parameter(l.name + "/depthwise_kernel",
                                 at::empty({l.depth_multiplier, in, l.kernel[0], l.kernel[1]}));
          channels = in * l.depth_multiplier;
          if (l.kind == LayerKind::kDepthwiseConv2D) {
            l.units = channels;
          }
        }
        if (l.kind == LayerKind::kConv2D || l.kind == LayerKind::kSeparableConv2D) {
          if (l.units < 1) {
            bad_layer(l, "filters must be at least 1");
          }
          if (l.kind == LayerKind::kConv2D) {
            kernels_[i] = register_parameter(l.name + "/kernel",
                                             at::empty({l.units, in, l.kernel[0], l.kernel[1]}));
          } else {
            pointwise_[i] = register_parameter(l.name + "/pointwise_kernel",
                                               at::empty({l.units, channels, 1, 1}));
          }
          channels = l.units;
        }
        if (conv && l.use_bias) {
          biases_[i] = register_parameter(l.name + "/bias", at::empty({channels}));
        }
        shape = {h.out, w.out, channels};
        break;
      }
      case LayerKind::kFlatten: {
        int64_t n = 1;
        for (int64_t d : shape) {
          n *= d;
        }
        shape = {n};
        break;
      }
      case LayerKind::kDense: {
        if (image) {
          bad_layer(l,
                    "needs a flat input (add a Flatten layer before it), got " + shape_text(shape));
        }
        if (l.units < 1) {
          bad_layer(l, "units must be at least 1");
        }
        kernels_[i] = register_parameter(l.name + "/kernel", at::empty({l.units, shape[0]}));
        if (l.use_bias) {
          biases_[i] = register_parameter(l.name + "/bias", at::empty({l.units}));
        }
        shape = {l.units};
        break;
      }
      case LayerKind::kDropout:
        if (!(l.rate >= 0.0 && l.rate < 1.0)) {
          bad_layer(l, "rate must be in [0, 1)");
        }
        break;
      case LayerKind::kActivation:
        break;
      case LayerKind::kGlobalAveragePooling2D:
      case LayerKind::kGlobalMaxPooling2D:
        if (!image) {
          bad_layer(l, "needs an image input [h,w,c], got " + shape_text(shape));
        }
        shape = {shape[2]};
        break;
      case LayerKind::kBatchNormalization: {
        if (!(l.epsilon > 0.0) || !std::isfinite(l.epsilon) || !(l.momentum >= 0.0) ||
            !(l.momentum <= 1.0)) {
          bad_layer(l, "epsilon must be above 0 and momentum in [0, 1]");
        }
        if (l.axis != -1 && l.axis != static_cast<int64_t>(shape.size())) {
          bad_layer(l, "axis " + std::to_string(l.axis) + " is not the last axis of its input " +
                           shape_text(shape) + " (only the channels axis, -1, is supported)");
        }
        const int64_t features = shape.back();
        if (l.scale) {
          kernels_[i] = register_parameter(l.name + "/gamma", at::empty({features}));
        }
        if (l.center) {
          biases_[i] = register_parameter(l.name + "/beta", at::empty({features}));
        }
        moving_mean_[i] = register_parameter(l.name + "/moving_mean", at::empty({features}),
                                             /*requires_grad=*/false);
        moving_variance_[i] = register_parameter(l.name + "/moving_variance", at::empty({features}),
                                                 /*requires_grad=*/false);
        break;
      }
    }
    l.output_shape = shape;
    if (!l.trainable) {
      set_trainable(i, false);
    }
  }
  const Layer& last = spec_.layers.back();
  softmax_at_end_ =
      last.activation == Activation::kSoftmax &&
      (last.kind == LayerKind::kDense || is_conv(last.kind) || last.kind == LayerKind::kActivation);
  reset_tfjs();
}

at::Tensor ModelImpl::apply(const Layer& l, size_t i, at::Tensor x, bool final_softmax) {
  const Activation act = (!final_softmax && softmax_at_end_ && i + 1 == spec_.layers.size())
                             ? Activation::kLinear
                             : l.activation;
  switch (l.kind) {
    case LayerKind::kConv2D: {
      const auto [h, w] = plan_window(l, x.size(2), x.size(3));
      const ConvPadding pad{h.pad_before, h.pad_after, w.pad_before, w.pad_after};
      const bool relu = act == Activation::kRelu;
      const bool plain = l.dilation[0] == 1 && l.dilation[1] == 1;
      if (plain && l.strides[0] == 1 && l.strides[1] == 1) {
        const at::Tensor out = try_onednn_conv2d(x, kernels_[i], biases_[i], pad, relu);
        if (out.defined()) {
          return relu ? out : activate(out, act);
        }
      }
      x = at::conv2d(pad_hw(x, h, w, 0.0), kernels_[i], biases_[i], {l.strides[0], l.strides[1]},
                     kNoPadding, {l.dilation[0], l.dilation[1]});
      return activate(x, act);
    }
    case LayerKind::kDepthwiseConv2D:
      return activate(depthwise(l, i, x), act);
    case LayerKind::kSeparableConv2D:
      // tfjs-core separableConv2d: the depthwise step (strides, padding,
      // dilation), then a 1x1 convolution; then the bias.
      return activate(at::conv2d(depthwise(l, i, x), pointwise_[i], biases_[i]), act);
    case LayerKind::kMaxPooling2D: {
      const auto [h, w] = plan_window(l, x.size(2), x.size(3));
      const at::Tensor out =
          try_onednn_max_pool2d(x, {l.kernel[0], l.kernel[1]}, {l.strides[0], l.strides[1]},
                                {h.pad_before, h.pad_after, w.pad_before, w.pad_after});
      if (out.defined()) {
        return out;
      }
      return at::max_pool2d(pad_hw(x, h, w, -std::numeric_limits<double>::infinity()),
                            {l.kernel[0], l.kernel[1]}, {l.strides[0], l.strides[1]});
    }
    case LayerKind::kAveragePooling2D: {
      const auto [h, w] = plan_window(l, x.size(2), x.size(3));
      const at::Tensor sum = at::avg_pool2d(pad_hw(x, h, w, 0.0), {l.kernel[0], l.kernel[1]},
                                            {l.strides[0], l.strides[1]});
      if (!l.same_padding) {
        return sum;
      }
      // TF averages over the window's cells inside the image only.
      const at::Tensor ones = at::ones({1, 1, x.size(2), x.size(3)}, x.options());
      const at::Tensor share = at::avg_pool2d(pad_hw(ones, h, w, 0.0), {l.kernel[0], l.kernel[1]},
                                              {l.strides[0], l.strides[1]});
      return sum / share;
    }
    case LayerKind::kFlatten:
      // TF.js flattens NHWC: index h*W*C + w*C + c (free for channels-last).
      return x.dim() == 4 ? x.permute({0, 2, 3, 1}).flatten(1) : x.flatten(1);
    case LayerKind::kDropout:
      return is_training() ? train_dropout(x, l.rate) : x;
    case LayerKind::kDense:
      return activate(at::linear(x, kernels_[i], biases_[i]), act);
    case LayerKind::kActivation:
      return activate(x, act);
    case LayerKind::kGlobalAveragePooling2D:
      return x.mean({2, 3});
    case LayerKind::kGlobalMaxPooling2D: {
      // TF.js's max gradient goes in full to every input equal to the
      // maximum (dy * equal(x, max)); libtorch's amax would share it among
      // them. So: the sum of the inputs at the maximum, minus the maximum
      // times (their count - 1): the maximum again, with TF.js's gradient.
      const at::Tensor top = x.detach().amax({2, 3}, /*keepdim=*/true);
      const at::Tensor at_top = x.detach().eq(top);
      const at::Tensor extra = at_top.sum({2, 3}).sub_(1).to(x.scalar_type());
      return (x * at_top).sum({2, 3}) - extra * top.flatten(1);
    }
    case LayerKind::kBatchNormalization:
      return batch_normalization(i, x);
  }
  return x;
}

bool ModelImpl::regularized() const {
  return std::any_of(spec_.layers.begin(), spec_.layers.end(),
                     [](const Layer& l) { return l.kernel_penalty.any() || l.bias_penalty.any(); });
}

at::Tensor ModelImpl::regularization_loss() const {
  at::Tensor total = at::zeros({}, at::TensorOptions(device()).dtype(at::kFloat));
  for (size_t i = 0; i < spec_.layers.size(); ++i) {
    const Layer& l = spec_.layers[i];
    for (const auto& [penalty, weight] : {std::pair{&l.kernel_penalty, &kernels_[i]},
                                          {&l.bias_penalty, &biases_[i]},
                                          {&l.pointwise_penalty, &pointwise_[i]}}) {
      // tfjs-layers regularizers.ts L1L2.apply: sum(l1 * |x|) + sum(l2 * x^2).
      if (!weight->defined()) {
        continue;
      }
      if (penalty->l1 != 0.0) {
        total = total + (weight->abs() * penalty->l1).sum();
      }
      if (penalty->l2 != 0.0) {
        total = total + (weight->square() * penalty->l2).sum();
      }
    }
  }
  return total;
}

at::Tensor ModelImpl::depthwise(const Layer& l, size_t i, const at::Tensor& x) {
  // tfjs-core depthwiseConv2d: input channel c with multiplier m gives output
  // channel c * depth_multiplier + m, as a grouped convolution of one group
  // per input channel orders them. Its weight [in*dm,1,kh,kw] is the kernel
  // [dm,in,kh,kw] with its first two axes swapped.
  const auto [h, w] = plan_window(l, x.size(2), x.size(3));
  const at::Tensor& k = kernels_[i];
  const int64_t in = k.size(1);
  const at::Tensor weight =
      k.permute({1, 0, 2, 3}).reshape({in * k.size(0), 1, k.size(2), k.size(3)});
  const at::Tensor bias = l.kind == LayerKind::kDepthwiseConv2D ? biases_[i] : at::Tensor();
  return at::conv2d(pad_hw(x, h, w, 0.0), weight, bias, {l.strides[0], l.strides[1]}, kNoPadding,
                    {l.dilation[0], l.dilation[1]}, /*groups=*/in);
}

at::Tensor ModelImpl::batch_normalization(size_t i, const at::Tensor& x) {
  // tfjs-layers normalization.ts: in training, the batch's mean and
  // (biased, as tf.moments computes it) variance over every axis but the
  // channels, and each moving statistic moves to it by (1 - momentum):
  // moving -= (moving - batch) * (1 - momentum). Otherwise the moving ones.
  const Layer& l = spec_.layers[i];
  const std::vector<int64_t> axes =
      x.dim() == 4 ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
  std::vector<int64_t> broadcast(static_cast<size_t>(x.dim()), 1);
  broadcast[1] = x.size(1);
  at::Tensor mean;
  at::Tensor variance;
  if (is_training()) {
    mean = x.mean(axes, /*keepdim=*/true);
    variance = (x - mean).square().mean(axes, /*keepdim=*/true);
    torch::NoGradGuard no_grad;
    const double decay = 1.0 - l.momentum;
    moving_mean_[i].sub_(
        (moving_mean_[i] - mean.detach().reshape({-1}).to(at::kFloat)).mul_(decay));
    moving_variance_[i].sub_(
        (moving_variance_[i] - variance.detach().reshape({-1}).to(at::kFloat)).mul_(decay));
  } else {
    mean = moving_mean_[i].view(broadcast);
    variance = moving_variance_[i].view(broadcast);
  }
  at::Tensor y = (x - mean) * (variance + l.epsilon).rsqrt();
  if (kernels_[i].defined()) {
    y = y * kernels_[i].view(broadcast);
  }
  if (biases_[i].defined()) {
    y = y + biases_[i].view(broadcast);
  }
  return y;
}

at::Tensor ModelImpl::forward(at::Tensor x) {
  for (size_t i = 0; i < spec_.layers.size(); ++i) {
    x = apply(spec_.layers[i], i, x, /*final_softmax=*/false);
  }
  return x;
}

at::Tensor ModelImpl::predict(at::Tensor x) {
  for (size_t i = 0; i < spec_.layers.size(); ++i) {
    x = apply(spec_.layers[i], i, x, /*final_softmax=*/true);
  }
  return x;
}

void glorot_normal_truncated_(at::Tensor weight, int64_t fan_in, int64_t fan_out) {
  // tfjs-layers initializers.ts VarianceScaling (scale 1, fan_avg, normal):
  // stddev = sqrt(scale / ((fan_in + fan_out) / 2)), drawn with
  // truncatedNormal, which redraws values more than 2 stddev from the mean.
  torch::NoGradGuard no_grad;
  const double stddev = std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  weight.normal_(0.0, stddev);
  while (true) {
    const at::Tensor outside = weight.abs() > 2.0 * stddev;
    const int64_t count = outside.sum().item<int64_t>();
    if (count == 0) {
      break;
    }
    weight.masked_scatter_(outside, at::empty({count}, weight.options()).normal_(0.0, stddev));
  }
}

void ModelImpl::reset_tfjs() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < kernels_.size(); ++i) {
    const at::Tensor& k = kernels_[i];
    if (spec_.layers[i].kind == LayerKind::kBatchNormalization) {
      // TF.js's defaults: gamma ones, beta zeros, moving mean 0, variance 1.
      for (const at::Tensor& ones : {k, moving_variance_[i]}) {
        if (ones.defined()) {
          ones.fill_(1.0);
        }
      }
      for (const at::Tensor& zeros : {biases_[i], moving_mean_[i]}) {
        if (zeros.defined()) {
          zeros.zero_();
        }
      }
      continue;
    }
    // tfjs-layers initializers.ts computeFans of TF.js's shape: conv
    // [kh,kw,in,out] (depthwise: out is the multiplier; pointwise: kh = kw
    // = 1), in*kh*kw and out*kh*kw; libtorch's [out,in,kh,kw] has the same
    // factors. Dense [out,in].
    const auto fans = [](const at::Tensor& t) {
      const int64_t receptive = t.dim() == 4 ? t.size(2) * t.size(3) : 1;
      return std::pair{t.size(1) * receptive, t.size(0) * receptive};
    };
    if (spec_.layers[i].kind == LayerKind::kSeparableConv2D) {
      // SeparableConv's defaults: glorotUniform for both kernels.
      for (const at::Tensor& t : {k, pointwise_[i]}) {
        const auto [in, out] = fans(t);
        glorot_uniform_(t, in, out);
      }
    } else if (k.defined()) {
      const auto [in, out] = fans(k);
      glorot_normal_truncated_(k, in, out);
    }
    if (biases_[i].defined()) {
      biases_[i].zero_();
    }
  }
}

std::vector<std::pair<std::string, at::Tensor>> ModelImpl::tfjs_weights() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  // TF.js's model.weights (what model.save writes, in this order): the
  // trainable weights of every layer, then the others (moving statistics,
  // the weights of frozen layers), each part in layer order.
  std::vector<std::pair<std::string, at::Tensor>> others;
  for (size_t i = 0; i < kernels_.size(); ++i) {
    const Layer& l = spec_.layers[i];
    const bool norm = l.kind == LayerKind::kBatchNormalization;
    auto& part = l.trainable ? out : others;
    if (kernels_[i].defined()) {
      part.emplace_back(l.name + (norm ? "/gamma"
                                  : l.kind == LayerKind::kConv2D || l.kind == LayerKind::kDense
                                      ? "/kernel"
                                      : "/depthwise_kernel"),
                        kernels_[i]);
    }
    if (pointwise_[i].defined()) {
      part.emplace_back(l.name + "/pointwise_kernel", pointwise_[i]);
    }
    if (biases_[i].defined()) {
      part.emplace_back(l.name + (norm ? "/beta" : "/bias"), biases_[i]);
    }
    if (norm) {
      others.emplace_back(l.name + "/moving_mean", moving_mean_[i]);
      others.emplace_back(l.name + "/moving_variance", moving_variance_[i]);
    }
  }
  out.insert(out.end(), others.begin(), others.end());
  return out;
}

at::Tensor ModelImpl::weight(const std::string& tfjs_name) const {
  for (const auto& [name, tensor] : tfjs_weights()) {
    if (name == tfjs_name) {
      return tensor;
    }
  }
  throw std::out_of_range("no weight named " + tfjs_name);
}

c10::Device ModelImpl::device() const {
  for (const auto& k : kernels_) {
    if (k.defined()) {
      return k.device();
    }
  }
  return c10::Device(c10::kCPU);
}

void ModelImpl::set_trainable(size_t index, bool trainable) {
  spec_.layers.at(index).trainable = trainable;
  for (at::Tensor* t : {&kernels_[index], &biases_[index], &pointwise_[index]}) {
    if (t->defined()) {
      t->requires_grad_(trainable);
    }
  }
}

size_t ModelImpl::layer_index(const std::string& name_or_index) const {
  const auto& layers = spec_.layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].name == name_or_index) {
      return i;
    }
  }
  if (!name_or_index.empty() && name_or_index.size() < 10 &&
      name_or_index.find_first_not_of("0123456789") == std::string::npos) {
    const size_t i = std::stoul(name_or_index);
    if (i < layers.size()) {
      return i;
    }
  }
  std::string names;
  for (size_t i = 0; i < layers.size(); ++i) {
    names += (i > 0 ? ", " : "") + std::to_string(i) + " " + layers[i].name;
  }
  throw ConfigError("no layer \"" + name_or_index + "\" in the model (its layers: " + names + ")");
}

size_t freeze_up_to(Model& model, const std::string& name_or_index) {
  const size_t last = model->layer_index(name_or_index);
  for (size_t i = 0; i <= last; ++i) {
    model->set_trainable(i, false);
  }
  return last + 1;
}

Model replace_head(const Model& model, int64_t units) {
  ModelSpec spec = model->spec();
  auto& layers = spec.layers;
  size_t head = layers.size();
  for (size_t i = layers.size(); i-- > 0;) {
    if (layers[i].kind == LayerKind::kDense) {
      head = i;
      break;
    }
    if (layers[i].kind != LayerKind::kActivation && layers[i].kind != LayerKind::kDropout) {
      throw ConfigError("the model ends in layer " + layers[i].name + " (" +
                        class_name(layers[i].kind) +
                        "): a new head replaces the last Dense layer, which only Activation "
                        "and Dropout layers may follow");
    }
  }
  if (head == layers.size()) {
    throw ConfigError("the model has no Dense layer to replace");
  }
  Layer& l = layers[head];
  l.units = units;
  l.trainable = true;
  if (l.config.is_object()) {
    l.config["units"] = units;
    l.config["trainable"] = true;
  }
  const std::string prefix = l.name + "/";
  Model fresh(std::move(spec));  // every weight drawn anew: the head's stay
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : fresh->tfjs_weights()) {
    if (name.compare(0, prefix.size(), prefix) != 0) {
      tensor.copy_(model->weight(name));
    }
  }
  // The saved optimizer state stays behind: it is the old head's.
  fresh->saved_optimizer.count = model->saved_optimizer.count;
  fresh->saved_optimizer.class_name = model->saved_optimizer.class_name;
  return fresh;
}

int64_t model_outputs(const Model& model) {
  const auto& out = model->spec().layers.back().output_shape;
  return out.size() == 1 ? out[0] : 0;
}

int64_t count_trainable_params(const Model& model) {
  int64_t total = 0;
  for (const auto& p : model->parameters()) {
    if (p.requires_grad()) {
      total += p.numel();
    }
  }
  return total;
}

int64_t count_params(const Model& model) {
  int64_t total = 0;
  for (const auto& p : model->parameters()) {
    total += p.numel();
  }
  return total;
}

std::string summary_text(const Model& model) {
  // tfjs-layers printSummary for a Sequential model: line length 90,
  // columns ending at 32%, 61%, 89% and 100% of it.
  constexpr size_t kLine = 90;
  const std::vector<size_t> positions = {28, 54, 80, 90};
  std::ostringstream out;
  out << std::string(kLine, '_') << "\n"
      << format_row({"Layer (type)", "Input Shape", "Output shape", "Param #"}, positions) << "\n"
      << std::string(kLine, '=') << "\n";
  const auto& layers = model->spec().layers;
  const auto weights = model->tfjs_weights();
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
    int64_t params = 0;
    for (const auto& [name, tensor] : weights) {
      if (name.rfind(l.name + "/", 0) == 0) {
        params += tensor.numel();
      }
    }
    out << format_row(
               {l.name + " (" + class_name(l.kind) + ")", "[" + shape_text(l.input_shape) + "]",
                shape_text(l.output_shape), std::to_string(params)},
               positions)
        << "\n"
        << std::string(kLine, i + 1 == layers.size() ? '=' : '_') << "\n";
  }
  const int64_t total = count_params(model);
  const int64_t trainable = count_trainable_params(model);
  out << "Total params: " << total << "\n"
      << "Trainable params: " << trainable << "\n"
      << "Non-trainable params: " << total - trainable << "\n"
      << std::string(kLine, '_') << "\n";
  return out.str();
}

void to_channels_last(Model& model) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) {
    if (p.dim() == 4) {
      p.set_data(at::empty_like(p, at::MemoryFormat::ChannelsLast).copy_(p));
    }
  }
}

at::Tensor predict_proba(Model& model, at::Tensor images, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const c10::Device device = model->device();
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += batch_size) {
    const int64_t len = std::min(batch_size, images.size(0) - start);
    parts.push_back(model->predict(images.narrow(0, start, len).to(device)).to(at::kFloat));
  }
  model->train(was_training);
  if (parts.empty()) {
    return at::empty({0, model->spec().layers.back().output_shape.at(0)}, images.options());
  }
  return at::cat(parts).to(images.device());
}

}  // namespace mnist
