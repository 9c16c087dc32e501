// The merge layers as tfjs-layers 4.22 computes, checks and saves them
// (merge.ts): Add, Multiply, Average, Maximum and Minimum combine their inputs
// value by value, Concatenate joins them along one axis. They have no
// weights, and TF.js saves only their name and trainable (Concatenate: its
// axis first). TF.js 4.22 has no Subtract (Keras's), so a model of it is
// refused (keras_only_layers).
//
// Shapes broadcast as TF.js's Merge.computeElementwiseOpOutputShape: aligned
// at their last axis, each pair of sizes equal or one of them 1. Inputs of
// several ranks are computed as TF.js's Merge.call does, in TF.js's axis
// order: the lower-ranked ones get new axes of size 1 after the batch axis
// until every rank is the highest.
#include <algorithm>

#include <ATen/ATen.h>

#include "layers/layer_util.hpp"

namespace mnist::layers {

namespace {

/// "[null,2,3], [null,3]": the shapes of a layer's inputs.
std::string shapes_text(const std::vector<Shape>& shapes) {
  std::string text;
  for (const Shape& s : shapes) {
    text += (text.empty() ? "" : ", ") + shape_text(s);
  }
  return text;
}

/// TF.js's "A merge layer should be called on an Array of at least 2 inputs".
void require_several(const std::vector<Shape>& inputs) {
  if (inputs.size() < 2) {
    fail("takes at least 2 inputs (a list of tensors, as TF.js's merge layers), got " +
         std::to_string(inputs.size()));
  }
}

/// The values per example a merge layer may output: the bound of a model's
/// input (docs/formats.md, "Sizes are bounded"), so that broadcasting [h,1] with [1,w]
/// cannot ask for more than any input has.
constexpr int64_t kMaxOutputValues = int64_t{1} << 24;

enum class Op { kAdd, kMultiply, kAverage, kMaximum, kMinimum };

/// Add, Multiply, Average, Maximum, Minimum: TF.js's Merge subclasses, folded
/// over their inputs in order as their mergeFunction does.
class Elementwise : public LayerOf<Elementwise> {
 public:
  explicit Elementwise(Op op) : op_(op) {}
  const char* class_name() const override {
    switch (op_) {
      case Op::kAdd:
        return "Add";
      case Op::kMultiply:
        return "Multiply";
      case Op::kAverage:
        return "Average";
      case Op::kMaximum:
        return "Maximum";
      case Op::kMinimum:
        return "Minimum";
    }
    return "";
  }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*w*/) override {
    require_several(inputs);
    Shape out = inputs[0];
    for (size_t i = 1; i < inputs.size(); ++i) {
      // computeElementwiseOpOutputShape: the longer shape's leading sizes,
      // then each aligned pair's size.
      const Shape& longer = out.size() >= inputs[i].size() ? out : inputs[i];
      const Shape& shorter = out.size() >= inputs[i].size() ? inputs[i] : out;
      const size_t lead = longer.size() - shorter.size();
      Shape next(longer.begin(), longer.begin() + static_cast<std::ptrdiff_t>(lead));
      for (size_t k = 0; k < shorter.size(); ++k) {
        const int64_t a = longer[lead + k];
        const int64_t b = shorter[k];
        if (a != b && a != 1 && b != 1) {
          fail("the shapes of its inputs " + shapes_text(inputs) +
               " do not broadcast together (as in TF.js: aligned at their last axis, each pair "
               "of sizes must be equal or one of them 1)");
        }
        next.push_back(a == 1 ? b : a);
      }
      out = std::move(next);
    }
    int64_t values = 1;
    for (const int64_t d : out) {
      values = values > kMaxOutputValues / d ? kMaxOutputValues + 1 : values * d;
    }
    if (values > kMaxOutputValues) {
      fail("its inputs " + shapes_text(inputs) + " broadcast to " + shape_text(out) +
           ", more than " + std::to_string(kMaxOutputValues) + " values per example");
    }
    return out;
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& /*context*/) const override {
    int64_t rank = 0;
    for (const at::Tensor& x : inputs) {
      rank = std::max(rank, x.dim());
    }
    const bool same_rank = std::all_of(inputs.begin(), inputs.end(),
                                       [rank](const at::Tensor& x) { return x.dim() == rank; });
    // Of one rank, every input is in the same layout, and broadcasting axis by
    // axis gives what TF.js's order gives. Otherwise TF.js's Merge.call: in
    // its order, axes of size 1 after the batch axis up to the highest rank.
    std::vector<at::Tensor> xs;
    for (const at::Tensor& x : inputs) {
      at::Tensor y = same_rank ? x : to_tfjs_order(x);
      while (y.dim() < rank) {
        y = y.unsqueeze(1);
      }
      xs.push_back(y);
    }
    at::Tensor out = xs[0];
    for (size_t i = 1; i < xs.size(); ++i) {
      const at::Tensor& x = xs[i];
      switch (op_) {
        case Op::kAdd:
        case Op::kAverage:
          out = out + x;
          break;
        case Op::kMultiply:
          out = out * x;
          break;
        case Op::kMaximum:
          // tfjs-core's Maximum: Math.max (NaN wins), and its gradient goes to
          // the first operand where they are equal (greaterEqual), all of it.
          out = at::where(out.ge(x).logical_or_(out.isnan()), out, x);
          break;
        case Op::kMinimum:
          out = at::where(out.le(x).logical_or_(out.isnan()), out, x);
          break;
      }
    }
    if (op_ == Op::kAverage) {
      // tfc.mul(1 / inputs.length, sum): the float32 reciprocal, then a product.
      out = out * (1.0 / static_cast<double>(xs.size()));
    }
    return same_rank ? out : from_tfjs_order(out);
  }

  void write_config(ordered_json& /*c*/) const override {}

 private:
  Op op_;
};

class Concatenate : public LayerOf<Concatenate> {
 public:
  explicit Concatenate(const ordered_json& c) {
    if (const ordered_json* v = find(c, "axis")) {
      if (!v->is_number_integer()) {
        fail("field \"axis\" must be an integer, found " + v->dump());
      }
      axis_ = v->is_number_unsigned()
                  ? static_cast<int64_t>(std::min<uint64_t>(v->get<uint64_t>(), uint64_t{1} << 30))
                  : v->get<int64_t>();
    }
    if (axis_ == 0) {
      fail(
          "field \"axis\" is 0, the batch axis: TF.js would join the examples of its inputs into "
          "one batch (of their batches' sizes summed), not the values of each example");
    }
    if (axis_ < -1) {
      // tfjs_backend.ts concatenate: `if (axis < 0) axis = rank`, then -1.
      fail("field \"axis\" is " + std::to_string(axis_) +
           ": TF.js 4.22 computes the output shape along that axis but concatenates along the "
           "last axis for every negative axis; give the axis as a positive number");
    }
  }
  const char* class_name() const override { return "Concatenate"; }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*w*/) override {
    require_several(inputs);
    const int64_t rank = static_cast<int64_t>(inputs[0].size());
    for (const Shape& s : inputs) {
      if (static_cast<int64_t>(s.size()) != rank || rank == 0) {
        fail("needs inputs of one rank, got " + shapes_text(inputs));
      }
    }
    if (axis_ > rank) {
      fail("axis " + std::to_string(axis_) + " is not an axis of its inputs " +
           shapes_text(inputs) + " (1 to " + std::to_string(rank) + ", or -1)");
    }
    // The axis as an index into a shape without its batch axis.
    const size_t along = static_cast<size_t>(axis_ == -1 ? rank - 1 : axis_ - 1);
    Shape out = inputs[0];
    for (size_t i = 1; i < inputs.size(); ++i) {
      for (size_t d = 0; d < out.size(); ++d) {
        if (d != along && inputs[i][d] != out[d]) {
          fail("needs inputs of the same shape except along axis " + std::to_string(axis_) +
               ", got " + shapes_text(inputs));
        }
      }
      out[along] += inputs[i][along];
    }
    if (out[along] > 65536) {
      fail("joins its inputs " + shapes_text(inputs) + " into " + shape_text(out) +
           ", larger than 65536 on a side");
    }
    return out;
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& /*context*/) const override {
    const int64_t rank = inputs[0].dim();
    int64_t dim = axis_ == -1 ? rank - 1 : axis_;
    if (rank == 4) {  // an NCHW image: TF.js's axis 1, 2, 3 (h, w, c) is our 2, 3, 1
      dim = dim == 3 ? 1 : dim + 1;
    }
    return at::cat(inputs, dim);
  }

  void write_config(ordered_json& c) const override { c["axis"] = axis_; }

 private:
  int64_t axis_ = -1;  ///< TF.js's: the batch axis is 0; -1 or 1..rank
};

template <Op op>
std::unique_ptr<Layer> make_elementwise(const ordered_json& /*config*/) {
  return std::make_unique<Elementwise>(op);
}

}  // namespace

std::vector<LayerClass> merge_layers() {
  return {
      {"Add", make_elementwise<Op::kAdd>},         {"Multiply", make_elementwise<Op::kMultiply>},
      {"Average", make_elementwise<Op::kAverage>}, {"Maximum", make_elementwise<Op::kMaximum>},
      {"Minimum", make_elementwise<Op::kMinimum>}, {"Concatenate", make<Concatenate>}};
}

std::vector<std::pair<const char*, const char*>> keras_only_layers() {
  return {{"Subtract",
           "TF.js 4.22 has no Subtract layer (tf.loadLayersModel fails on it: \"Unknown layer: "
           "Subtract\"), so a model of it would not load in the browser"}};
}

}  // namespace mnist::layers
