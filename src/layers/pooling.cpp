// Pooling as tfjs-layers 4.22 computes and saves it (pooling.ts):
// MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D.
// Max pooling goes first to the fast CPU path (onednn.hpp).
#include <limits>

#include <ATen/ATen.h>

#include "layers/layer_util.hpp"
#include "mnist/onednn.hpp"

namespace mnist::layers {

namespace {

/// MaxPooling2D (`max`) or AveragePooling2D.
class Pooling2D : public LayerOf<Pooling2D> {
 public:
  Pooling2D(const ordered_json& c, bool max) : max_(max) {
    require_channels_last(c);
    window_.size = get_pair(c, "pool_size", {2, 2});
    window_.strides = get_pair(c, "strides", window_.size);
    window_.same = get_same_padding(c);
  }
  const char* class_name() const override { return max_ ? "MaxPooling2D" : "AveragePooling2D"; }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*weights*/) override {
    const Shape& in = single(inputs);
    const Pair out = window_.output_size(in);
    return {out[0], out[1], in[2]};
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*weights*/,
                  const CallContext& /*context*/) const override {
    const at::Tensor& x = inputs[0];
    const auto [h, w] = window_.plan(x.size(2), x.size(3));
    if (max_) {
      const at::Tensor out = try_onednn_max_pool2d(
          x, window_.size, window_.strides, {h.pad_before, h.pad_after, w.pad_before, w.pad_after});
      if (out.defined()) {
        return out;
      }
      return at::max_pool2d(pad_hw(x, h, w, -std::numeric_limits<double>::infinity()), window_.size,
                            window_.strides);
    }
    const at::Tensor sum = at::avg_pool2d(pad_hw(x, h, w, 0.0), window_.size, window_.strides);
    if (!window_.same) {
      return sum;
    }
    // TF averages over the window's cells inside the image only.
    const at::Tensor ones = at::ones({1, 1, x.size(2), x.size(3)}, x.options());
    const at::Tensor share = at::avg_pool2d(pad_hw(ones, h, w, 0.0), window_.size, window_.strides);
    return sum / share;
  }

  void write_config(ordered_json& c) const override {
    c["pool_size"] = {window_.size[0], window_.size[1]};
    c["padding"] = window_.same ? "same" : "valid";
    c["strides"] = {window_.strides[0], window_.strides[1]};
    c["data_format"] = "channels_last";
  }

 private:
  bool max_;
  Window window_;
};

/// GlobalAveragePooling2D (`max` false) or GlobalMaxPooling2D.
class GlobalPooling2D : public LayerOf<GlobalPooling2D> {
 public:
  GlobalPooling2D(const ordered_json& c, bool max) : max_(max) {
    require_channels_last(c);
    // Keras 2.6+ writes keepdims; TF.js 4.22 has no such option.
    if (const ordered_json* keep = find(c, "keepdims"); keep != nullptr && *keep != false) {
      fail("field \"keepdims\" is " + keep->dump() + " (only false is supported, as in TF.js)");
    }
  }
  const char* class_name() const override {
    return max_ ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D";
  }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*weights*/) override {
    const Shape& in = single(inputs);
    require_image(in);
    return {in[2]};
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*weights*/,
                  const CallContext& /*context*/) const override {
    const at::Tensor& x = inputs[0];
    if (!max_) {
      return x.mean({2, 3});
    }
    // TF.js's max gradient goes in full to every input equal to the maximum
    // (dy * equal(x, max)); libtorch's amax would share it among them. So:
    // the sum of the inputs at the maximum, minus the maximum times (their
    // count - 1): the maximum again, with TF.js's gradient.
    const at::Tensor top = x.detach().amax({2, 3}, /*keepdim=*/true);
    const at::Tensor at_top = x.detach().eq(top);
    const at::Tensor extra = at_top.sum({2, 3}).sub_(1).to(x.scalar_type());
    return (x * at_top).sum({2, 3}) - extra * top.flatten(1);
  }

  void write_config(ordered_json& c) const override { c["data_format"] = "channels_last"; }

 private:
  bool max_;
};

}  // namespace

std::vector<LayerClass> pooling_layers() {
  return {
      {"MaxPooling2D",
       [](const ordered_json& c) -> std::unique_ptr<Layer> {
         return std::make_unique<Pooling2D>(c, true);
       }},
      {"AveragePooling2D",
       [](const ordered_json& c) -> std::unique_ptr<Layer> {
         return std::make_unique<Pooling2D>(c, false);
       }},
      {"GlobalAveragePooling2D",
       [](const ordered_json& c) -> std::unique_ptr<Layer> {
         return std::make_unique<GlobalPooling2D>(c, false);
       }},
      {"GlobalMaxPooling2D",
       [](const ordered_json& c) -> std::unique_ptr<Layer> {
         return std::make_unique<GlobalPooling2D>(c, true);
       }},
  };
}

}  // namespace mnist::layers
