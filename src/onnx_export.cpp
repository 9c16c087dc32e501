// The ONNX export (onnx_export.hpp, docs/formats.md "Export to ONNX"): each
// node of the model's graph becomes the ONNX nodes that compute what its
// layer computes in TF.js at inference (Dropout: nothing; BatchNormalization:
// the moving statistics). A layer is read through what it saves
// (write_config: TF.js's keys, every value explicit), its shapes and its
// weights through the Model, so the registry's layers stay free of ONNX.
//
// Layouts: TF.js's tensors are NHWC; ONNX's Conv, pooling and Resize take
// NCHW only. Every rank-4 value here is held in one of the two orders, and a
// layer asks for the one it needs: a Transpose is added where the order
// changes (once per value: the other order is kept for later readers).
// Elementwise layers, padding, cropping and global pooling work in whichever
// order their input is in, so a convnet gets one Transpose after its input
// and one before its Flatten, which then flattens in TF.js's NHWC order: the
// Dense kernels keep TF.js's rows.
#define ONNX_ML 1
#define ONNX_NAMESPACE onnx
#include "mnist/onnx_export.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include <ATen/ATen.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/tfjs_io.hpp"

namespace mnist {

namespace {

using nlohmann::ordered_json;

/// The order of a rank-4 value's axes: TF.js's NHWC, or ONNX's NCHW. Values
/// of other ranks are always in TF.js's order.
enum class Order { kTfjs, kNchw };

/// A tensor of the ONNX graph: its name, rank and (rank 4) axis order.
struct Value {
  std::string name;
  int64_t rank = 0;  ///< with the batch axis
  Order order = Order::kTfjs;
};

/// TF's window arithmetic along one axis (as src/layers/registry.cpp's
/// plan_axis, which the layers use): "same" pads (extra on the bottom and the
/// right), "valid" none.
std::array<int64_t, 2> window_pads(int64_t in, int64_t window, int64_t stride, bool same) {
  if (!same) {
    return {0, 0};
  }
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + window - in, 0);
  return {total / 2, total - total / 2};
}

std::array<int64_t, 2> pair_of(const ordered_json& v) { return {v.at(0), v.at(1)}; }

/// The model's graph as ONNX nodes, built node after node.
class Exporter {
 public:
  Exporter(const Model& model, std::string origin) : model_(model), origin_(std::move(origin)) {}

  onnx::ModelProto run();

 private:
  /// A layer's call: the layer, its input values and shapes (without the
  /// batch axis, TF.js's order), its output shape and its weights in the
  /// order its build declared them.
  struct Call {
    const Layer& layer;
    std::vector<Value> inputs;
    std::vector<Shape> input_shapes;
    Shape output_shape;
    std::vector<at::Tensor> weights;
  };

  [[noreturn]] void refuse(const Layer& layer, const std::string& why) const {
    throw ConfigError(origin_ + ": layer '" + layer.name + "' (" + layer.class_name() +
                      "): " + why);
  }

  /// A name no other value, initializer or node has: `hint`, or `hint_2`, ...
  std::string unique(const std::string& hint) {
    std::string name = hint;
    for (int i = 2; !names_.insert(name).second; ++i) {
      name = hint + "_" + std::to_string(i);
    }
    return name;
  }

  /// Adds node `op` reading `inputs` and returns its (one) output's name,
  /// made from `hint`.
  std::string node(const std::string& op,
                   const std::vector<std::string>& inputs,
                   const std::string& hint,
                   const std::vector<onnx::AttributeProto>& attributes = {}) {
    onnx::NodeProto* n = graph_->add_node();
    n->set_op_type(op);
    const std::string out = unique(hint);
    n->set_name(out);
    for (const std::string& input : inputs) {
      n->add_input(input);
    }
    n->add_output(out);
    for (const onnx::AttributeProto& a : attributes) {
      *n->add_attribute() = a;
    }
    return out;
  }

  static onnx::AttributeProto ints(const char* name, const std::vector<int64_t>& values) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INTS);
    for (const int64_t v : values) {
      a.add_ints(v);
    }
    return a;
  }
  static onnx::AttributeProto integer(const char* name, int64_t value) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(value);
    return a;
  }
  static onnx::AttributeProto real(const char* name, double value) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::FLOAT);
    a.set_f(static_cast<float>(value));
    return a;
  }
  static onnx::AttributeProto text(const char* name, const std::string& value) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::STRING);
    a.set_s(value);
    return a;
  }

  /// A float32 initializer of `tensor`'s values (any dtype, any layout) in
  /// shape `shape` (its own when empty), little-endian as ONNX's raw_data
  /// is; the same `hint` twice (a layer called at several nodes) gives the
  /// first one again.
  std::string initializer(const std::string& hint,
                          const at::Tensor& tensor,
                          std::vector<int64_t> shape = {}) {
    if (const auto it = initializers_.find(hint); it != initializers_.end()) {
      return it->second;
    }
    const at::Tensor t = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
    if (shape.empty()) {
      shape = t.sizes().vec();
    }
    onnx::TensorProto* init = graph_->add_initializer();
    const std::string name = unique(hint);
    init->set_name(name);
    init->set_data_type(onnx::TensorProto::FLOAT);
    for (const int64_t d : shape) {
      init->add_dims(d);
    }
    std::string bytes(reinterpret_cast<const char*>(t.data_ptr<float>()),
                      static_cast<size_t>(t.numel()) * sizeof(float));
    if constexpr (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__) {
      for (size_t i = 0; i < bytes.size(); i += 4) {
        std::reverse(bytes.begin() + static_cast<std::ptrdiff_t>(i),
                     bytes.begin() + static_cast<std::ptrdiff_t>(i + 4));
      }
    }
    init->set_raw_data(std::move(bytes));
    initializers_[hint] = name;
    return name;
  }

  std::string scalar(const std::string& hint, double value) {
    return initializer(hint, at::full({}, value, at::kFloat));
  }

  /// An int64 initializer (shapes, axes, pads), one per distinct content.
  std::string int64s(const std::vector<int64_t>& values) {
    std::string key = "\x01int64s";
    for (const int64_t v : values) {
      key += "_" + std::to_string(v);
    }
    if (const auto it = initializers_.find(key); it != initializers_.end()) {
      return it->second;
    }
    onnx::TensorProto* init = graph_->add_initializer();
    const std::string name = unique("const_" + std::to_string(int64_consts_++));
    init->set_name(name);
    init->set_data_type(onnx::TensorProto::INT64);
    init->add_dims(static_cast<int64_t>(values.size()));
    for (const int64_t v : values) {
      init->add_int64_data(v);
    }
    initializers_[key] = name;
    return name;
  }

  /// `v` in `order` (a Transpose the first time it is asked for).
  Value in_order(const Value& v, Order order) {
    if (v.rank != 4 || v.order == order) {
      return v;
    }
    const auto key = std::make_pair(v.name, order);
    if (const auto it = transposed_.find(key); it != transposed_.end()) {
      return {it->second, 4, order};
    }
    const bool to_nchw = order == Order::kNchw;
    const std::string out =
        node("Transpose", {v.name}, v.name + (to_nchw ? "/to_nchw" : "/to_nhwc"),
             {ints("perm",
                   to_nchw ? std::vector<int64_t>{0, 3, 1, 2} : std::vector<int64_t>{0, 2, 3, 1})});
    transposed_[key] = out;
    transposed_[std::make_pair(out, v.order)] = v.name;
    return {out, 4, order};
  }

  /// The axis of `v` that TF.js's axis `axis` (of its rank, with the batch
  /// axis; negative from the end) is.
  static int64_t axis_of(const Value& v, int64_t axis) {
    if (axis < 0) {
      axis += v.rank;
    }
    if (v.rank == 4 && v.order == Order::kNchw) {
      constexpr int64_t kNchw[] = {0, 2, 3, 1};
      return kNchw[axis];
    }
    return axis;
  }

  /// tfjs-layers' activations (activations.ts) on `x`, in its order; the
  /// softmaxes along TF.js's last axis (the channels).
  Value activate(const Value& x, Activation a, const std::string& prefix);

  Value emit(const Call& call);
  Value conv(const Call& call, const ordered_json& c);
  Value pooling(const Call& call, const ordered_json& c, bool max);
  Value batch_norm(const Call& call, const ordered_json& c);
  Value layer_norm(const Call& call, const ordered_json& c);
  Value merge(const Call& call, const ordered_json& c);
  Value nested(const Call& call, const ordered_json& c);

  const Model& model_;
  std::string origin_;
  onnx::GraphProto* graph_ = nullptr;
  std::set<std::string> names_;
  std::map<std::string, std::string> initializers_;
  std::map<std::pair<std::string, Order>, std::string> transposed_;
  int int64_consts_ = 0;
};

Value Exporter::activate(const Value& x, Activation a, const std::string& prefix) {
  const auto unary = [&](const char* op, std::vector<onnx::AttributeProto> attributes = {}) {
    return Value{node(op, {x.name}, prefix + "/" + op, attributes), x.rank, x.order};
  };
  const int64_t channels = axis_of(x, -1);
  switch (a) {
    case Activation::kLinear:
      return x;
    case Activation::kRelu:
      return unary("Relu");
    case Activation::kSoftmax:
      return unary("Softmax", {integer("axis", channels)});
    case Activation::kLogSoftmax:
      return unary("LogSoftmax", {integer("axis", channels)});
    case Activation::kSigmoid:
      return unary("Sigmoid");
    case Activation::kTanh:
      return unary("Tanh");
    case Activation::kElu:
      return unary("Elu", {real("alpha", 1.0)});
    case Activation::kSelu:
      // tfjs-core selu_util.ts: scale 1.0507009873554805, scale * alpha
      // 1.7580993408473769.
      return unary("Selu", {real("alpha", 1.7580993408473768599 / 1.0507009873554804934),
                            real("gamma", 1.0507009873554804934)});
    case Activation::kRelu6:
      return {node("Clip", {x.name, scalar("zero", 0.0), scalar("six", 6.0)}, prefix + "/Relu6"),
              x.rank, x.order};
    case Activation::kHardSigmoid:
      // tfjs-layers backend hardSigmoid: clip(0.2 x + 0.5, 0, 1).
      return unary("HardSigmoid", {real("alpha", 0.2), real("beta", 0.5)});
    case Activation::kSoftplus:
      return unary("Softplus");
    case Activation::kSoftsign:
      return unary("Softsign");
    case Activation::kSwish: {
      const std::string s = node("Sigmoid", {x.name}, prefix + "/Sigmoid");
      return {node("Mul", {x.name, s}, prefix + "/Swish"), x.rank, x.order};
    }
    case Activation::kMish: {
      const std::string sp = node("Softplus", {x.name}, prefix + "/Softplus");
      const std::string t = node("Tanh", {sp}, prefix + "/Tanh");
      return {node("Mul", {x.name, t}, prefix + "/Mish"), x.rank, x.order};
    }
    case Activation::kGelu: {
      // tfjs-layers activations.ts Gelu: x * 0.5 * (1 + erf(x / sqrt(2))).
      const std::string d =
          node("Div", {x.name, scalar("sqrt_2", std::sqrt(2.0))}, prefix + "/Div");
      const std::string e = node("Erf", {d}, prefix + "/Erf");
      const std::string p = node("Add", {e, scalar("one", 1.0)}, prefix + "/Add");
      const std::string h = node("Mul", {p, scalar("half", 0.5)}, prefix + "/Mul");
      return {node("Mul", {x.name, h}, prefix + "/Gelu"), x.rank, x.order};
    }
  }
  return x;
}

Value Exporter::conv(const Call& call, const ordered_json& c) {
  const Layer& l = call.layer;
  const std::string cls = l.class_name();
  const Value x = in_order(call.inputs[0], Order::kNchw);
  const Shape& in = call.input_shapes[0];
  const auto kernel = pair_of(c.at("kernel_size"));
  const auto strides = pair_of(c.at("strides"));
  const auto dilation = pair_of(c.at("dilation_rate"));
  const bool same = c.at("padding") == "same";
  const bool use_bias = c.at("use_bias").get<bool>();
  const auto activation = parse_activation(c.at("activation").get<std::string>());
  if (!activation) {
    refuse(l, "its activation " + c.at("activation").dump() + " has no ONNX form here");
  }
  std::string y;
  if (cls == "Conv2DTranspose") {
    // tfjs-layers conv_utils deconvLength: "same" gives input * stride, taking
    // (full - wanted) / 2 (rounded down) off the start; "valid" gives
    // input * stride + max(kernel - stride, 0), zeros at the end where the
    // kernel is smaller than the stride (ONNX's output_padding).
    std::vector<int64_t> pads(4, 0);
    std::vector<int64_t> extra(2, 0);
    for (size_t a = 0; a < 2; ++a) {
      const int64_t full = (in[a] - 1) * strides[a] + kernel[a];
      const int64_t want = same ? in[a] * strides[a]
                                : in[a] * strides[a] + std::max<int64_t>(kernel[a] - strides[a], 0);
      if (full > want) {
        pads[a] = same ? (full - want) / 2 : 0;
        pads[a + 2] = full - want - pads[a];
      } else {
        extra[a] = want - full;
      }
    }
    std::vector<std::string> inputs = {x.name, initializer(l.name + "/kernel", call.weights[0])};
    if (use_bias) {
      inputs.push_back(initializer(l.name + "/bias", call.weights[1]));
    }
    std::vector<onnx::AttributeProto> attributes = {ints("kernel_shape", {kernel[0], kernel[1]}),
                                                    ints("strides", {strides[0], strides[1]}),
                                                    ints("pads", pads)};
    if (extra[0] + extra[1] > 0) {
      attributes.push_back(ints("output_padding", extra));
    }
    y = node("ConvTranspose", inputs, l.name + "/ConvTranspose", attributes);
  } else {
    std::vector<int64_t> pads(4, 0);
    for (size_t a = 0; a < 2; ++a) {
      const auto [before, after] =
          window_pads(in[a], (kernel[a] - 1) * dilation[a] + 1, strides[a], same);
      pads[a] = before;
      pads[a + 2] = after;
    }
    const std::vector<onnx::AttributeProto> window = {
        ints("kernel_shape", {kernel[0], kernel[1]}), ints("strides", {strides[0], strides[1]}),
        ints("dilations", {dilation[0], dilation[1]}), ints("pads", pads)};
    size_t next = 0;
    std::string input = x.name;
    if (cls != "Conv2D") {
      // DepthwiseConv2D, and SeparableConv2D's depthwise step: one group per
      // input channel, input channel c with multiplier m giving output channel
      // c * multiplier + m (tfjs-core depthwiseConv2d); the kernel, kept as
      // [multiplier,in,kh,kw], becomes ONNX's [in*multiplier,1,kh,kw].
      const at::Tensor& k = call.weights[next++];
      const at::Tensor w =
          k.permute({1, 0, 2, 3}).reshape({k.size(0) * k.size(1), 1, k.size(2), k.size(3)});
      std::vector<std::string> inputs = {input, initializer(l.name + "/depthwise_kernel", w)};
      const bool bias_here = cls == "DepthwiseConv2D" && use_bias;
      if (bias_here) {
        inputs.push_back(initializer(l.name + "/bias", call.weights[next++]));
      }
      std::vector<onnx::AttributeProto> attributes = window;
      attributes.push_back(integer("group", in[2]));
      input = node("Conv", inputs, l.name + "/Depthwise", attributes);
    }
    if (cls == "DepthwiseConv2D") {
      y = input;
    } else if (cls == "SeparableConv2D") {
      // tfjs-core separableConv2d: then a 1x1 convolution, then the bias.
      std::vector<std::string> inputs = {
          input, initializer(l.name + "/pointwise_kernel", call.weights[1])};
      if (use_bias) {
        inputs.push_back(initializer(l.name + "/bias", call.weights[2]));
      }
      y = node("Conv", inputs, l.name + "/Pointwise", {ints("kernel_shape", {1, 1})});
    } else {
      std::vector<std::string> inputs = {input, initializer(l.name + "/kernel", call.weights[0])};
      if (use_bias) {
        inputs.push_back(initializer(l.name + "/bias", call.weights[1]));
      }
      y = node("Conv", inputs, l.name + "/Conv", window);
    }
  }
  return activate({y, 4, Order::kNchw}, *activation, l.name);
}

Value Exporter::pooling(const Call& call, const ordered_json& c, bool max) {
  const Layer& l = call.layer;
  const Value x = in_order(call.inputs[0], Order::kNchw);
  const Shape& in = call.input_shapes[0];
  const auto size = pair_of(c.at("pool_size"));
  const auto strides = pair_of(c.at("strides"));
  const bool same = c.at("padding") == "same";
  std::vector<int64_t> pads(4, 0);
  for (size_t a = 0; a < 2; ++a) {
    const auto [before, after] = window_pads(in[a], size[a], strides[a], same);
    pads[a] = before;
    pads[a + 2] = after;
  }
  std::vector<onnx::AttributeProto> attributes = {ints("kernel_shape", {size[0], size[1]}),
                                                  ints("strides", {strides[0], strides[1]}),
                                                  ints("pads", pads)};
  if (!max) {
    // TF averages over the window's cells inside the image only.
    attributes.push_back(integer("count_include_pad", 0));
  }
  const std::string op = max ? "MaxPool" : "AveragePool";
  return {node(op, {x.name}, l.name + "/" + op, attributes), 4, Order::kNchw};
}

Value Exporter::batch_norm(const Call& call, const ordered_json& c) {
  // Inference: the moving statistics (tfjs-layers normalization.ts), over
  // the last axis of TF.js's order.
  const Layer& l = call.layer;
  const bool scale = c.at("scale").get<bool>();
  const bool center = c.at("center").get<bool>();
  const double epsilon = c.at("epsilon").get<double>();
  const size_t stats = call.weights.size() - 2;
  const at::Tensor& mean = call.weights[stats];
  const at::Tensor& variance = call.weights[stats + 1];
  const at::Tensor gamma = scale ? call.weights[0] : at::ones_like(mean);
  const at::Tensor beta = center ? call.weights[scale ? 1 : 0] : at::zeros_like(mean);
  Value x = call.inputs[0];
  if (x.rank == 4 || x.rank == 2) {
    // ONNX's BatchNormalization: over axis 1 (NCHW's channels, [N,C]'s
    // features).
    x = in_order(x, Order::kNchw);
    return {node("BatchNormalization",
                 {x.name, initializer(l.name + "/gamma", gamma),
                  initializer(l.name + "/beta", beta), initializer(l.name + "/moving_mean", mean),
                  initializer(l.name + "/moving_variance", variance)},
                 l.name + "/BatchNormalization", {real("epsilon", epsilon)}),
            x.rank, x.order};
  }
  // Another rank: (x - mean) * rsqrt(variance + epsilon) * gamma + beta,
  // broadcast along the last axis.
  const std::string centered =
      node("Sub", {x.name, initializer(l.name + "/moving_mean", mean)}, l.name + "/Sub");
  const at::Tensor factor = (variance.to(at::kDouble) + epsilon).rsqrt() * gamma.to(at::kDouble);
  const std::string scaled =
      node("Mul", {centered, initializer(l.name + "/factor", factor)}, l.name + "/Mul");
  return {node("Add", {scaled, initializer(l.name + "/beta", beta)}, l.name + "/Add"), x.rank,
          x.order};
}

Value Exporter::layer_norm(const Call& call, const ordered_json& c) {
  // tfjs-layers normalization.ts LayerNormalization: moments over the axes,
  // then (x - mean) * rsqrt(variance + epsilon) * gamma + beta, gamma and
  // beta of the normalised axes' sizes.
  const Layer& l = call.layer;
  const Value x = in_order(call.inputs[0], Order::kTfjs);
  const ordered_json& axis = c.at("axis");
  std::vector<int64_t> axes;
  for (const auto& a : axis.is_array() ? axis : ordered_json::array({axis})) {
    const int64_t v = a.get<int64_t>();
    axes.push_back(v < 0 ? v + x.rank : v);
  }
  std::vector<int64_t> broadcast(static_cast<size_t>(x.rank), 1);
  for (const int64_t a : axes) {
    broadcast[static_cast<size_t>(a)] = call.input_shapes[0][static_cast<size_t>(a - 1)];
  }
  const std::string mean =
      node("ReduceMean", {x.name}, l.name + "/mean", {ints("axes", axes), integer("keepdims", 1)});
  const std::string centered = node("Sub", {x.name, mean}, l.name + "/Sub");
  const std::string square = node("Mul", {centered, centered}, l.name + "/Square");
  const std::string variance = node("ReduceMean", {square}, l.name + "/variance",
                                    {ints("axes", axes), integer("keepdims", 1)});
  const std::string shifted =
      node("Add", {variance, scalar(l.name + "/epsilon", c.at("epsilon").get<double>())},
           l.name + "/AddEpsilon");
  const std::string root = node("Sqrt", {shifted}, l.name + "/Sqrt");
  const std::string inverse = node("Reciprocal", {root}, l.name + "/Rsqrt");
  std::string y = node("Mul", {centered, inverse}, l.name + "/Normalized");
  size_t next = 0;
  if (c.at("scale").get<bool>()) {
    y = node("Mul", {y, initializer(l.name + "/gamma", call.weights[next++], broadcast)},
             l.name + "/Scale");
  }
  if (c.at("center").get<bool>()) {
    y = node("Add", {y, initializer(l.name + "/beta", call.weights[next], broadcast)},
             l.name + "/Center");
  }
  return {y, x.rank, Order::kTfjs};
}

Value Exporter::merge(const Call& call, const ordered_json& c) {
  const Layer& l = call.layer;
  const std::string cls = l.class_name();
  int64_t rank = 0;
  for (const Value& v : call.inputs) {
    rank = std::max(rank, v.rank);
  }
  const bool same_rank = std::all_of(call.inputs.begin(), call.inputs.end(),
                                     [rank](const Value& v) { return v.rank == rank; });
  // Of one rank, the inputs in the first one's order (broadcasting axis by
  // axis is the same in either); of several, TF.js's Merge.call: in its
  // order, axes of size 1 after the batch axis up to the highest rank.
  const Order order = same_rank ? call.inputs[0].order : Order::kTfjs;
  std::vector<std::string> xs;
  for (const Value& v : call.inputs) {
    std::string name = in_order(v, order).name;
    if (v.rank < rank) {
      std::vector<int64_t> axes;
      for (int64_t a = 1; a <= rank - v.rank; ++a) {
        axes.push_back(a);
      }
      name = node("Unsqueeze", {name, int64s(axes)}, l.name + "/Unsqueeze");
    }
    xs.push_back(name);
  }
  const Value shape{"", rank, order};
  if (cls == "Concatenate") {
    // TF.js's axis: -1 (the last) or 1..rank, the batch axis being 0.
    const int64_t axis = c.at("axis").get<int64_t>();
    return {node("Concat", xs, l.name + "/Concat", {integer("axis", axis_of(shape, axis))}), rank,
            order};
  }
  // Folded over the inputs in order, as their mergeFunction does.
  const char* op = cls == "Multiply"  ? "Mul"
                   : cls == "Maximum" ? "Max"
                   : cls == "Minimum" ? "Min"
                                      : "Add";
  std::string y = xs[0];
  for (size_t i = 1; i < xs.size(); ++i) {
    y = node(op, {y, xs[i]}, l.name + "/" + op);
  }
  if (cls == "Average") {
    // tfc.mul(1 / inputs.length, sum): the float32 reciprocal, then a product.
    y = node("Mul", {y, scalar(l.name + "/reciprocal", 1.0 / static_cast<double>(xs.size()))},
             l.name + "/Average");
  }
  return {y, rank, order};
}

Value Exporter::emit(const Call& call) {
  const Layer& l = call.layer;
  const std::string cls = l.class_name();
  ordered_json c = ordered_json::object();
  l.write_config(c);
  const Value& x = call.inputs.empty() ? Value{} : call.inputs[0];
  const auto same = [&](const std::string& name) { return Value{name, x.rank, x.order}; };
  if (cls == "InputLayer" || cls == "Dropout") {
    return x;  // Dropout: nothing at inference
  }
  if (cls == "Conv2D" || cls == "DepthwiseConv2D" || cls == "SeparableConv2D" ||
      cls == "Conv2DTranspose") {
    return conv(call, c);
  }
  if (cls == "MaxPooling2D" || cls == "AveragePooling2D") {
    return pooling(call, c, cls == "MaxPooling2D");
  }
  if (cls == "GlobalAveragePooling2D" || cls == "GlobalMaxPooling2D") {
    // Over the rows and columns, in whichever order the input is.
    const std::vector<int64_t> axes = {axis_of(x, 1), axis_of(x, 2)};
    const std::string op = cls == "GlobalMaxPooling2D" ? "ReduceMax" : "ReduceMean";
    return {node(op, {x.name}, l.name + "/" + op, {ints("axes", axes), integer("keepdims", 0)}), 2,
            Order::kTfjs};
  }
  if (cls == "BatchNormalization") {
    return batch_norm(call, c);
  }
  if (cls == "LayerNormalization") {
    return layer_norm(call, c);
  }
  if (cls == "Dense") {
    const auto activation = parse_activation(c.at("activation").get<std::string>());
    if (!activation) {
      refuse(l, "its activation " + c.at("activation").dump() + " has no ONNX form here");
    }
    if (x.rank != 2) {
      // Along TF.js's last axis of another rank (a rank-3 tensor's features,
      // an image's channels in NHWC): MatMul, which broadcasts over the
      // leading axes, by the kernel as TF.js keeps it ([in,out]), then the
      // bias.
      std::string y = node(
          "MatMul",
          {in_order(x, Order::kTfjs).name, initializer(l.name + "/kernel", call.weights[0].t())},
          l.name + "/MatMul");
      if (c.at("use_bias").get<bool>()) {
        y = node("Add", {y, initializer(l.name + "/bias", call.weights[1])}, l.name + "/Add");
      }
      return activate({y, x.rank, Order::kTfjs}, *activation, l.name);
    }
    // Gemm with transB: the kernel [out,in] as libtorch keeps it.
    std::vector<std::string> inputs = {in_order(x, Order::kTfjs).name,
                                       initializer(l.name + "/kernel", call.weights[0])};
    if (c.at("use_bias").get<bool>()) {
      inputs.push_back(initializer(l.name + "/bias", call.weights[1]));
    }
    const std::string y = node("Gemm", inputs, l.name + "/Gemm", {integer("transB", 1)});
    return activate({y, 2, Order::kTfjs}, *activation, l.name);
  }
  if (cls == "Flatten") {
    // TF.js flattens NHWC: index h*W*C + w*C + c.
    const Value v = in_order(x, Order::kTfjs);
    return {node("Flatten", {v.name}, l.name + "/Flatten", {integer("axis", 1)}), 2, Order::kTfjs};
  }
  if (cls == "Activation") {
    const auto activation = parse_activation(c.at("activation").get<std::string>());
    if (!activation) {
      refuse(l, "its activation " + c.at("activation").dump() + " has no ONNX form here");
    }
    return activate(x, *activation, l.name);
  }
  if (cls == "ReLU") {
    if (c.at("max_value").is_null()) {
      return same(node("Relu", {x.name}, l.name + "/Relu"));
    }
    return same(node("Clip",
                     {x.name, scalar("zero", 0.0),
                      scalar(l.name + "/max_value", c.at("max_value").get<double>())},
                     l.name + "/Clip"));
  }
  if (cls == "LeakyReLU") {
    return same(node("LeakyRelu", {x.name}, l.name + "/LeakyRelu",
                     {real("alpha", c.at("alpha").get<double>())}));
  }
  if (cls == "ELU") {
    return same(
        node("Elu", {x.name}, l.name + "/Elu", {real("alpha", c.at("alpha").get<double>())}));
  }
  if (cls == "ThresholdedReLU") {
    // x where x > theta, else 0.
    return same(node("ThresholdedRelu", {x.name}, l.name + "/ThresholdedRelu",
                     {real("alpha", c.at("theta").get<double>())}));
  }
  if (cls == "PReLU") {
    // alpha is kept in TF.js's order ([h,w,c]); an NCHW input sees it as
    // [c,h,w].
    const at::Tensor& alpha = call.weights[0];
    const bool nchw = x.rank == 4 && x.order == Order::kNchw;
    const std::string slope = initializer(l.name + (nchw ? "/alpha_chw" : "/alpha"),
                                          nchw ? alpha.permute({2, 0, 1}) : alpha);
    return same(node("PRelu", {x.name, slope}, l.name + "/PRelu"));
  }
  if (cls == "Softmax") {
    const ordered_json& axis = c.at("axis");
    if (!axis.is_array()) {
      return same(node("Softmax", {x.name}, l.name + "/Softmax",
                       {integer("axis", axis_of(x, axis.get<int64_t>()))}));
    }
    // tfjs-layers: exp(x - logSumExp(x, axes, keepDims)).
    std::vector<int64_t> axes;
    for (const auto& a : axis) {
      axes.push_back(axis_of(x, a.get<int64_t>()));
    }
    const std::string lse = node("ReduceLogSumExp", {x.name}, l.name + "/LogSumExp",
                                 {ints("axes", axes), integer("keepdims", 1)});
    const std::string d = node("Sub", {x.name, lse}, l.name + "/Sub");
    return same(node("Exp", {d}, l.name + "/Softmax"));
  }
  if (cls == "ZeroPadding2D" || cls == "Cropping2D") {
    const bool crop = cls == "Cropping2D";
    const ordered_json& sides = c.at(crop ? "cropping" : "padding");
    const int64_t rows = axis_of(x, 1);
    const int64_t columns = axis_of(x, 2);
    if (!crop) {
      std::vector<int64_t> pads(8, 0);
      pads[static_cast<size_t>(rows)] = sides.at(0).at(0);
      pads[static_cast<size_t>(rows) + 4] = sides.at(0).at(1);
      pads[static_cast<size_t>(columns)] = sides.at(1).at(0);
      pads[static_cast<size_t>(columns) + 4] = sides.at(1).at(1);
      return same(node("Pad", {x.name, int64s(pads)}, l.name + "/Pad"));
    }
    const Shape& in = call.input_shapes[0];
    const int64_t top = sides.at(0).at(0);
    const int64_t left = sides.at(1).at(0);
    const std::vector<int64_t> starts = {top, left};
    const std::vector<int64_t> ends = {in[0] - sides.at(0).at(1).get<int64_t>(),
                                       in[1] - sides.at(1).at(1).get<int64_t>()};
    return same(node("Slice", {x.name, int64s(starts), int64s(ends), int64s({rows, columns})},
                     l.name + "/Slice"));
  }
  if (cls == "UpSampling2D") {
    // TF's resize by whole factors: nearest repeats each pixel (output i reads
    // input floor(i / s)); bilinear is TF's legacy one (no half-pixel
    // centres, no aligned corners): output i reads input i / s, the last
    // pixel repeated past the edge. ONNX's "asymmetric" coordinates are i / s.
    const Value v = in_order(x, Order::kNchw);
    const auto size = pair_of(c.at("size"));
    const bool bilinear = c.at("interpolation") == "bilinear";
    const std::string scales = initializer(
        l.name + "/scales",
        at::tensor({1.0f, 1.0f, static_cast<float>(size[0]), static_cast<float>(size[1])}));
    std::vector<onnx::AttributeProto> attributes = {
        text("mode", bilinear ? "linear" : "nearest"),
        text("coordinate_transformation_mode", "asymmetric")};
    if (!bilinear) {
      attributes.push_back(text("nearest_mode", "floor"));
    }
    return {node("Resize", {v.name, "", scales}, l.name + "/Resize", attributes), 4, Order::kNchw};
  }
  if (cls == "Reshape") {
    // In TF.js's order; 0 keeps the batch axis.
    const Value v = in_order(x, Order::kTfjs);
    std::vector<int64_t> shape = {0};
    shape.insert(shape.end(), call.output_shape.begin(), call.output_shape.end());
    return {node("Reshape", {v.name, int64s(shape)}, l.name + "/Reshape"),
            static_cast<int64_t>(shape.size()), Order::kTfjs};
  }
  if (cls == "Permute") {
    const Value v = in_order(x, Order::kTfjs);
    std::vector<int64_t> perm = {0};
    for (const auto& d : c.at("dims")) {
      perm.push_back(d.get<int64_t>());
    }
    return {node("Transpose", {v.name}, l.name + "/Transpose", {ints("perm", perm)}), v.rank,
            Order::kTfjs};
  }
  if (cls == "Rescaling") {
    const std::string scaled = node(
        "Mul", {x.name, scalar(l.name + "/scale", c.at("scale").get<double>())}, l.name + "/Mul");
    return same(node("Add", {scaled, scalar(l.name + "/offset", c.at("offset").get<double>())},
                     l.name + "/Add"));
  }
  if (cls == "Add" || cls == "Multiply" || cls == "Average" || cls == "Maximum" ||
      cls == "Minimum" || cls == "Concatenate") {
    return merge(call, c);
  }
  if (cls == "Sequential") {
    return nested(call, c);
  }
  refuse(l, "mnist-train has no ONNX form for this layer class");
}

Value Exporter::nested(const Call& call, const ordered_json& c) {
  // A nested Sequential: its layers one after the other, each made again
  // from the config the nested model saves and built for its input, which
  // gives its output shape and how many of the nested model's weights
  // (its layers', in order) are its.
  Value x = call.inputs[0];
  Shape shape = call.input_shapes[0];
  size_t offset = 0;
  for (const auto& entry : c.at("layers")) {
    const std::string cls = entry.at("class_name").get<std::string>();
    const std::string name = entry.at("config").value("name", std::string());
    if (cls == "Sequential") {
      refuse(call.layer, "its layer '" + name +
                             "' is a Sequential model nested in it (one level of nesting is "
                             "exported to ONNX)");
    }
    LayerPtr inner = make_layer(cls, entry.at("config"));
    std::vector<WeightSpec> specs;
    inner->input_shape = shape;
    const Shape out = inner->build({shape}, specs);
    inner->output_shape = out;
    if (offset + specs.size() > call.weights.size()) {
      refuse(call.layer, "its layers declare more weights than it holds");
    }
    Call inner_call{*inner,
                    {x},
                    {shape},
                    out,
                    {call.weights.begin() + static_cast<std::ptrdiff_t>(offset),
                     call.weights.begin() + static_cast<std::ptrdiff_t>(offset + specs.size())}};
    offset += specs.size();
    x = emit(inner_call);
    shape = out;
  }
  return x;
}

/// The name of the model's input, as TF.js names it: a functional model's
/// InputLayer; for a Sequential model tfjs-layers' Sequential.add makes it
/// "<first layer>_input".
std::string input_name(const Model& model) {
  const ModelSpec& spec = model->spec();
  if (spec.layers.empty()) {
    return "input";
  }
  const Layer& first = *spec.layers.front();
  return std::string(first.class_name()) == "InputLayer" ? first.name : first.name + "_input";
}

void set_shape(onnx::ValueInfoProto* info, const std::vector<int64_t>& shape) {
  onnx::TypeProto_Tensor* t = info->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (const int64_t d : shape) {
    onnx::TensorShapeProto_Dimension* dim = t->mutable_shape()->add_dim();
    if (d < 0) {
      dim->set_dim_param("batch");
    } else {
      dim->set_dim_value(d);
    }
  }
}

void add_metadata(onnx::ModelProto& proto, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* entry = proto.add_metadata_props();
  entry->set_key(key);
  entry->set_value(value);
}

onnx::ModelProto Exporter::run() {
  const OnnxSignature signature = onnx_signature(model_);
  const ModelSpec& spec = model_->spec();
  onnx::ModelProto proto;
  proto.set_ir_version(7);  // ONNX 1.8's, the first of opset 13
  proto.set_producer_name("mnist-train");
  proto.set_producer_version(MNIST_VERSION);
  proto.set_doc_string(
      "Exported by mnist-train from the TF.js Layers model '" + spec.name +
      "': float32 images NHWC in [0,1] in, TF.js's predict() out (docs/formats.md)");
  onnx::OperatorSetIdProto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  graph_ = proto.mutable_graph();
  graph_->set_name(spec.name);

  names_.insert(signature.input_name);
  set_shape(graph_->add_input(), signature.input_shape);
  graph_->mutable_input(0)->set_name(signature.input_name);
  names_.insert(signature.output_name);

  const Graph& graph = model_->graph();
  std::vector<Value> outputs(graph.nodes.size());
  const Value input{signature.input_name, static_cast<int64_t>(spec.input_shape.size()) + 1,
                    Order::kTfjs};
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const GraphNode& g = graph.nodes[n];
    Call call{*spec.layers[g.layer],
              {},
              model_->node_input_shapes(n),
              model_->node_output_shape(n),
              model_->layer_weights(g.layer)};
    if (g.inputs.empty()) {
      call.inputs.push_back(input);
    }
    for (const size_t i : g.inputs) {
      call.inputs.push_back(outputs[i]);
    }
    outputs[n] = emit(call);
  }
  const Value last = in_order(outputs[graph.output], Order::kTfjs);
  node("Identity", {last.name}, signature.output_name + "/Identity");
  graph_->mutable_node(graph_->node_size() - 1)->set_output(0, signature.output_name);
  onnx::ValueInfoProto* output = graph_->add_output();
  output->set_name(signature.output_name);
  set_shape(output, signature.output_shape);

  // What metadata.json says beside a TF.js model (tfjs_io.hpp,
  // teachable_machine_metadata) and model.json's userDefinedMetadata.
  if (spec.metadata.is_object() && spec.metadata.contains("classNames")) {
    add_metadata(proto, "classNames", spec.metadata["classNames"].dump());
  }
  if (!spec.metadata.is_null()) {
    add_metadata(proto, "userDefinedMetadata", spec.metadata.dump());
  }
  // Without its timeStamp: the same model always exports to the same bytes.
  ordered_json tm = teachable_machine_metadata(model_, "");
  if (tm.is_object()) {
    tm.erase("timeStamp");
    add_metadata(proto, "metadata.json", tm.dump());
  }
  add_metadata(proto, "inputLayout", "NHWC");
  add_metadata(proto, "inputRange", "[0,1]");
  return proto;
}

}  // namespace

OnnxSignature onnx_signature(const Model& model) {
  OnnxSignature s;
  s.input_name = input_name(model);
  s.input_shape = {-1};
  const Shape& in = model->spec().input_shape;
  s.input_shape.insert(s.input_shape.end(), in.begin(), in.end());
  const Graph& graph = model->graph();
  const auto& layers = model->spec().layers;
  s.output_name = layers.empty() ? "output" : layers[graph.nodes.at(graph.output).layer]->name;
  if (s.output_name == s.input_name) {
    s.output_name += "_output";
  }
  s.output_shape = {-1};
  const Shape& out = model->node_output_shape(graph.output);
  s.output_shape.insert(s.output_shape.end(), out.begin(), out.end());
  return s;
}

std::string onnx_model_bytes(const Model& model, const std::string& origin) {
  onnx::ModelProto proto = Exporter(model, origin).run();
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    // A model this export wrote that ONNX's checker refuses: a bug here.
    throw FormatError(origin + ": the ONNX model made from it fails ONNX's checker (" +
                      std::string(e.what()) + ")");
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) {
    throw FormatError(origin + ": the ONNX model made from it cannot be serialized (over 2 GiB)");
  }
  return bytes;
}

uint64_t save_onnx(const Model& model, const std::string& origin, const std::string& path) {
  const std::filesystem::path target(path);
  const std::filesystem::path folder =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec)) {
    throw IoError(path + ": cannot write the ONNX model there: folder " + folder.string() +
                  " not found");
  }
  if (std::filesystem::is_directory(target, ec)) {
    throw IoError(path + ": is a folder, expected the path of the ONNX file to write");
  }
  const std::string bytes = onnx_model_bytes(model, origin);
  write_file_atomic(path, bytes);
  return bytes.size();
}

}  // namespace mnist
