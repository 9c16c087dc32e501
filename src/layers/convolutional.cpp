// Convolutions as tfjs-layers 4.22 computes and saves them (convolutional.ts,
// convolutional_depthwise.ts): Conv2D, DepthwiseConv2D, SeparableConv2D,
// Conv2DTranspose.
// Conv2D goes first to the fast CPU path (onednn.hpp); depthwise and
// separable convolutions are grouped libtorch convolutions in TF.js's
// channel order.
#include <algorithm>

#include <ATen/ATen.h>

#include "layers/layer_util.hpp"
#include "mnist/onednn.hpp"

namespace mnist::layers {

namespace {

/// at::conv2d's padding: none (TF's is applied by pad_hw, as it may be
/// uneven).
constexpr Pair kNoPadding{0, 0};

/// at::conv2d with TF's padding (h, w from Window::plan): as the
/// convolution's own where it is the same on both sides of each axis, as
/// "same" padding of an odd kernel at stride 1 always is, so no padded copy
/// of the input is made (for MobileNet's depthwise layers, a copy as large as
/// the input, each call); else a zero-padded copy of the input.
at::Tensor conv2d_tf(const at::Tensor& x,
                     const at::Tensor& weight,
                     const at::Tensor& bias,
                     const Window& window,
                     const AxisPlan& h,
                     const AxisPlan& w,
                     int64_t groups = 1) {
  if (h.pad_before == h.pad_after && w.pad_before == w.pad_after) {
    return at::conv2d(x, weight, bias, window.strides, Pair{h.pad_before, w.pad_before},
                      window.dilation, groups);
  }
  return at::conv2d(pad_hw(x, h, w, 0.0), weight, bias, window.strides, kNoPadding, window.dilation,
                    groups);
}

/// What every convolution reads and writes (TF.js's BaseConv), but its
/// filters and weights.
struct ConvFields {
  Window window;
  Activation activation = Activation::kLinear;
  bool use_bias = true;
  std::vector<std::pair<std::string, Penalty>> penalties;

  /// Reads the window, activation and bias fields (the caller reads
  /// data_format, then filters and depth_multiplier, first: TF.js's order).
  void read(const ordered_json& c, bool depthwise) {
    window.size = get_pair(c, "kernel_size", {0, 0});
    window.strides = get_pair(c, "strides", {1, 1});
    window.dilation = get_pair(c, "dilation_rate", {1, 1});
    if (depthwise && window.dilation != Pair{1, 1}) {
      // tfjs-layers convolutional_depthwise.ts: DepthwiseConv2D's call()
      // passes no dilation ("TODO(cais): Add support for dilation").
      fail("field \"dilation_rate\" is " + find(c, "dilation_rate")->dump() +
           ": TF.js ignores a DepthwiseConv2D's dilation rate, so this model would predict "
           "one thing in TF.js and another where it was made; only 1 is supported");
    }
    window.same = get_same_padding(c);
    activation = get_activation(c);
    use_bias = get_bool(c, "use_bias", true);
  }

  /// The fields TF.js's BaseConv writes for every convolution, in its order.
  void write(ordered_json& c) const {
    c["kernel_size"] = {window.size[0], window.size[1]};
    c["strides"] = {window.strides[0], window.strides[1]};
    c["padding"] = window.same ? "same" : "valid";
    c["data_format"] = "channels_last";
    c["dilation_rate"] = {window.dilation[0], window.dilation[1]};
    c["activation"] = activation_name(activation);
    c["use_bias"] = use_bias;
    c["bias_initializer"] = zeros_initializer();
    c["bias_regularizer"] = nullptr;
    c["activity_regularizer"] = nullptr;
    c["bias_constraint"] = nullptr;
  }

  /// Conv2D's and Conv2DTranspose's config: "filters", their kernel's
  /// fields, then write's.
  void write_with_kernel(ordered_json& c, int64_t filters) const {
    c["filters"] = filters;
    c["kernel_initializer"] = variance_scaling();
    c["kernel_regularizer"] = nullptr;
    c["kernel_constraint"] = nullptr;
    write(c);
  }

  WeightSpec bias(int64_t channels) const {
    return {"bias",
            {channels},
            WeightLayout::kVector,
            Initializer::kZeros,
            true,
            penalty_of(penalties, "bias")};
  }

  Activation effective(const CallContext& context) const {
    return context.logits && activation == Activation::kSoftmax ? Activation::kLinear : activation;
  }
};

class Conv2D : public LayerOf<Conv2D> {
 public:
  explicit Conv2D(const ordered_json& c) {
    require_channels_last(c);
    filters_ = get_int(c, "filters");
    f_.read(c, /*depthwise=*/false);
    read_regularizers(c, {{"kernel_regularizer", "kernel"}, {"bias_regularizer", "bias"}},
                      f_.penalties, training_problem);
  }
  const char* class_name() const override { return "Conv2D"; }
  bool ends_in_softmax() const override { return f_.activation == Activation::kSoftmax; }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& weights) override {
    const Shape& in = single(inputs);
    const Pair out = f_.window.output_size(in);
    if (filters_ < 1) {
      fail("filters must be at least 1");
    }
    weights.push_back({"kernel",
                       {filters_, in[2], f_.window.size[0], f_.window.size[1]},
                       WeightLayout::kConvKernel,
                       Initializer::kGlorotNormal,
                       true,
                       penalty_of(f_.penalties, "kernel")});
    if (f_.use_bias) {
      weights.push_back(f_.bias(filters_));
    }
    return {out[0], out[1], filters_};
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& w,
                  const CallContext& context) const override {
    const at::Tensor& x = inputs[0];
    const Activation act = f_.effective(context);
    const at::Tensor bias = f_.use_bias ? w[1] : at::Tensor();
    const Window& win = f_.window;
    const auto [h, wd] = win.plan(x.size(2), x.size(3));
    const bool plain = win.dilation[0] == 1 && win.dilation[1] == 1;
    if (plain && win.strides[0] == 1 && win.strides[1] == 1) {
      const ConvPadding pad{h.pad_before, h.pad_after, wd.pad_before, wd.pad_after};
      const bool relu = act == Activation::kRelu;
      const at::Tensor out = try_onednn_conv2d(x, w[0], bias, pad, relu);
      if (out.defined()) {
        return relu ? out : activate(out, act);
      }
    }
    return activate(conv2d_tf(x, w[0], bias, win, h, wd), act);
  }

  void write_config(ordered_json& c) const override { f_.write_with_kernel(c, filters_); }

 private:
  int64_t filters_ = 0;
  ConvFields f_;
};

/// DepthwiseConv2D, and the depthwise step of SeparableConv2D.
class Depthwise {
 public:
  /// Reads the fields after "filters" (SeparableConv2D's, read first).
  void read(const ordered_json& c, bool separable) {
    multiplier = get_int(c, "depth_multiplier", 1);
    f.read(c, /*depthwise=*/!separable);
  }

  /// Checks the input and declares the depthwise kernel, [multiplier,in,
  /// kh,kw] (its TF.js view is [kh,kw,in,multiplier]); returns the output's
  /// height and width.
  Pair build(const Shape& in, Initializer init, std::vector<WeightSpec>& weights) const {
    const Pair out = f.window.output_size(in);
    if (multiplier < 1) {
      fail("depth_multiplier must be at least 1");
    }
    weights.push_back({"depthwise_kernel",
                       {multiplier, in[2], f.window.size[0], f.window.size[1]},
                       WeightLayout::kConvKernel,
                       init,
                       true,
                       penalty_of(f.penalties, "depthwise_kernel")});
    return out;
  }

  /// tfjs-core depthwiseConv2d: input channel c with multiplier m gives
  /// output channel c * depth_multiplier + m, as a grouped convolution of one
  /// group per input channel orders them. Its weight [in*dm,1,kh,kw] is the
  /// kernel [dm,in,kh,kw] with its first two axes swapped.
  at::Tensor call(const at::Tensor& x, const at::Tensor& k, const at::Tensor& bias) const {
    const auto [h, w] = f.window.plan(x.size(2), x.size(3));
    const int64_t in = k.size(1);
    const at::Tensor weight =
        k.permute({1, 0, 2, 3}).reshape({in * k.size(0), 1, k.size(2), k.size(3)});
    return conv2d_tf(x, weight, bias, f.window, h, w, /*groups=*/in);
  }

  void write(ordered_json& c, const Layer& layer, bool separable) const {
    f.write(c);
    c["name"] = layer.name;
    c["trainable"] = layer.trainable;
    // TF.js 4.22's SeparableConv2D leaves depth_multiplier out of its config
    // (and then cannot load its own model of a multiplier above 1); it reads
    // the field, so it is written for both.
    c["depth_multiplier"] = multiplier;
    c["depthwise_initializer"] = variance_scaling(separable ? "uniform" : "normal");
    if (separable) {
      c["pointwise_initializer"] = variance_scaling("uniform");
    }
    c["depthwise_regularizer"] = nullptr;
    if (separable) {
      c["pointwise_regularizer"] = nullptr;
    }
    c["depthwise_constraint"] = nullptr;
    if (separable) {
      c["pointwise_constraint"] = nullptr;
    }
  }

  ConvFields f;
  int64_t multiplier = 1;
};

class DepthwiseConv2D : public LayerOf<DepthwiseConv2D> {
 public:
  explicit DepthwiseConv2D(const ordered_json& c) {
    require_channels_last(c);
    d_.read(c, /*separable=*/false);
    read_regularizers(c,
                      {{"depthwise_regularizer", "depthwise_kernel"}, {"bias_regularizer", "bias"}},
                      d_.f.penalties, training_problem);
  }
  const char* class_name() const override { return "DepthwiseConv2D"; }
  bool ends_in_softmax() const override { return d_.f.activation == Activation::kSoftmax; }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& weights) override {
    const Shape& in = single(inputs);
    // TF.js's default depthwise initializer: Glorot normal.
    const Pair out = d_.build(in, Initializer::kGlorotNormal, weights);
    const int64_t channels = in[2] * d_.multiplier;
    if (d_.f.use_bias) {
      weights.push_back(d_.f.bias(channels));
    }
    return {out[0], out[1], channels};
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& w,
                  const CallContext& context) const override {
    return activate(d_.call(inputs[0], w[0], d_.f.use_bias ? w[1] : at::Tensor()),
                    d_.f.effective(context));
  }

  void write_config(ordered_json& c) const override { d_.write(c, *this, /*separable=*/false); }

 private:
  Depthwise d_;
};

class SeparableConv2D : public LayerOf<SeparableConv2D> {
 public:
  explicit SeparableConv2D(const ordered_json& c) {
    require_channels_last(c);
    filters_ = get_int(c, "filters");
    d_.read(c, /*separable=*/true);
    read_regularizers(c,
                      {{"pointwise_regularizer", "pointwise_kernel"},
                       {"depthwise_regularizer", "depthwise_kernel"},
                       {"bias_regularizer", "bias"}},
                      d_.f.penalties, training_problem);
  }
  const char* class_name() const override { return "SeparableConv2D"; }
  bool ends_in_softmax() const override { return d_.f.activation == Activation::kSoftmax; }

  /// TF.js 4.22's SeparableConv2D leaves "depth_multiplier" out of the
  /// config it saves (the loader takes it from the manifest): a saved config
  /// gets it back.
  void refresh_config(ordered_json& saved) const override {
    saved["depth_multiplier"] = d_.multiplier;
  }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& weights) override {
    const Shape& in = single(inputs);
    // SeparableConv's defaults: Glorot uniform for both kernels.
    const Pair out = d_.build(in, Initializer::kGlorotUniform, weights);
    if (filters_ < 1) {
      fail("filters must be at least 1");
    }
    weights.push_back({"pointwise_kernel",
                       {filters_, in[2] * d_.multiplier, 1, 1},
                       WeightLayout::kConvKernel,
                       Initializer::kGlorotUniform,
                       true,
                       penalty_of(d_.f.penalties, "pointwise_kernel")});
    if (d_.f.use_bias) {
      weights.push_back(d_.f.bias(filters_));
    }
    return {out[0], out[1], filters_};
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& w,
                  const CallContext& context) const override {
    // tfjs-core separableConv2d: the depthwise step (strides, padding,
    // dilation), then a 1x1 convolution; then the bias.
    return activate(at::conv2d(d_.call(inputs[0], w[0], at::Tensor()), w[1],
                               d_.f.use_bias ? w[2] : at::Tensor()),
                    d_.f.effective(context));
  }

  void write_config(ordered_json& c) const override {
    c["filters"] = filters_;
    d_.write(c, *this, /*separable=*/true);
  }

 private:
  int64_t filters_ = 0;
  Depthwise d_;
};

/// Conv2DTranspose: tfjs-core conv2dTranspose, the gradient of a convolution
/// with respect to its input. Its TF.js kernel is [kh,kw,filters,in], kept
/// here as [in,filters,kh,kw] (libtorch's conv_transpose2d weight, the same
/// 4-D layout rule). The output is deconvLength's: input * strides, plus
/// max(kernel - strides, 0) for "valid". TF.js's call passes no dilation, so
/// a dilation rate is refused, as for DepthwiseConv2D.
class Conv2DTranspose : public LayerOf<Conv2DTranspose> {
 public:
  explicit Conv2DTranspose(const ordered_json& c) {
    require_channels_last(c);
    filters_ = get_int(c, "filters");
    f_.read(c, /*depthwise=*/false);
    if (f_.window.dilation != Pair{1, 1}) {
      fail("field \"dilation_rate\" is " + find(c, "dilation_rate")->dump() +
           ": TF.js's Conv2DTranspose passes no dilation to its convolution, so this model would "
           "predict one thing in TF.js and another where it was made; only 1 is supported");
    }
    if (const ordered_json* pad = find(c, "output_padding")) {
      fail("field \"output_padding\" is " + pad->dump() + " (TF.js has no output padding)");
    }
    read_regularizers(c, {{"kernel_regularizer", "kernel"}, {"bias_regularizer", "bias"}},
                      f_.penalties, training_problem);
  }
  const char* class_name() const override { return "Conv2DTranspose"; }
  bool ends_in_softmax() const override { return f_.activation == Activation::kSoftmax; }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& weights) override {
    const Shape& in = single(inputs);
    require_image(in);
    if (filters_ < 1) {
      fail("filters must be at least 1");
    }
    Shape out = {0, 0, filters_};
    for (size_t a = 0; a < 2; ++a) {
      out[a] = length(in[a], a);
      if (out[a] > 65536) {
        fail("its output would be larger than 65536 on a side (input " + shape_text(in) + ")");
      }
    }
    weights.push_back({"kernel",
                       {in[2], filters_, f_.window.size[0], f_.window.size[1]},
                       WeightLayout::kConvKernel,
                       Initializer::kGlorotNormal,
                       true,
                       penalty_of(f_.penalties, "kernel")});
    if (f_.use_bias) {
      weights.push_back(f_.bias(filters_));
    }
    return out;
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& w,
                  const CallContext& context) const override {
    const at::Tensor& x = inputs[0];
    // The whole transposed convolution, (in - 1) * stride + kernel a side,
    // then TF's output: "same" takes (kernel - stride) / 2 rows (rounded
    // down) off its start, the rest off its end; "valid" with a kernel
    // smaller than the stride gets zero rows at its end.
    at::Tensor y = at::conv_transpose2d(x, w[0], at::Tensor(), f_.window.strides);
    for (int64_t a = 0; a < 2; ++a) {
      const int64_t want = length(x.size(2 + a), static_cast<size_t>(a));
      const int64_t have = y.size(2 + a);
      if (have > want) {
        y = y.narrow(2 + a, f_.window.same ? (have - want) / 2 : 0, want);
      } else if (have < want) {
        std::vector<int64_t> pad(4, 0);
        pad[a == 0 ? 3 : 1] = want - have;
        y = at::constant_pad_nd(y, pad, 0.0);
      }
    }
    if (f_.use_bias) {
      y = y + w[1].view({1, -1, 1, 1});
    }
    return activate(y, f_.effective(context));
  }

  void write_config(ordered_json& c) const override { f_.write_with_kernel(c, filters_); }

 private:
  /// tfjs-layers conv_utils deconvLength of axis `a` (0 rows, 1 columns).
  int64_t length(int64_t in, size_t a) const {
    const int64_t stride = f_.window.strides[a];
    const int64_t kernel = f_.window.size[a];
    return f_.window.same ? in * stride : in * stride + std::max<int64_t>(kernel - stride, 0);
  }

  int64_t filters_ = 0;
  ConvFields f_;
};

}  // namespace

std::vector<LayerClass> convolutional_layers() {
  return {{"Conv2D", make<Conv2D>},
          {"DepthwiseConv2D", make<DepthwiseConv2D>},
          {"SeparableConv2D", make<SeparableConv2D>},
          {"Conv2DTranspose", make<Conv2DTranspose>}};
}

}  // namespace mnist::layers
