// Padding and reshaping as tfjs-layers 4.22 computes and saves them:
// ZeroPadding2D (padding.ts), Cropping2D and UpSampling2D (convolutional.ts),
// Reshape and Permute (core.ts), Rescaling (preprocessing). Images are NCHW
// inside the model (every rank-4 tensor); other ranks keep TF.js's axis order,
// so Reshape and Permute work in TF.js's order and convert back.
#include <algorithm>

#include <ATen/ATen.h>

#include "layers/layer_util.hpp"

namespace mnist::layers {

namespace {

/// ((top, bottom), (left, right)) from an int, [rows, columns] or
/// [[top, bottom], [left, right]] (ZeroPadding2D's padding, Cropping2D's
/// cropping), each 0..65536.
std::array<Pair, 2> get_sides(const ordered_json& c, const char* key, int64_t fallback) {
  const ordered_json* v = find(c, key);
  const auto amount = [&](const ordered_json& x) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > 65536) {
      fail(std::string("field \"") + key + "\" must hold whole numbers from 0 to 65536, found " +
           v->dump());
    }
    return x.get<int64_t>();
  };
  if (v == nullptr) {
    return {Pair{fallback, fallback}, Pair{fallback, fallback}};
  }
  if (v->is_number_integer()) {
    const int64_t n = amount(*v);
    return {Pair{n, n}, Pair{n, n}};
  }
  if (v->is_array() && v->size() == 2 && (*v)[0].is_number_integer()) {
    const int64_t rows = amount((*v)[0]);
    const int64_t columns = amount((*v)[1]);
    return {Pair{rows, rows}, Pair{columns, columns}};
  }
  if (v->is_array() && v->size() == 2 && (*v)[0].is_array() && (*v)[0].size() == 2 &&
      (*v)[1].is_array() && (*v)[1].size() == 2) {
    return {Pair{amount((*v)[0][0]), amount((*v)[0][1])},
            Pair{amount((*v)[1][0]), amount((*v)[1][1])}};
  }
  fail(std::string("field \"") + key +
       "\" must be an integer, [rows, columns] or [[top, bottom], [left, right]], found " +
       v->dump());
}

ordered_json sides_json(const std::array<Pair, 2>& s) {
  return {{s[0][0], s[0][1]}, {s[1][0], s[1][1]}};
}

/// ZeroPadding2D (`crop` false) and Cropping2D: rows and columns added (as
/// zeros) or taken off at each side.
class Sides2D : public LayerOf<Sides2D> {
 public:
  Sides2D(const ordered_json& c, bool crop) : crop_(crop) {
    require_channels_last(c);
    sides_ = get_sides(c, crop ? "cropping" : "padding", crop ? 0 : 1);
  }
  const char* class_name() const override { return crop_ ? "Cropping2D" : "ZeroPadding2D"; }
  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*w*/) override {
    const Shape& in = single(inputs);
    require_image(in);
    const int64_t sign = crop_ ? -1 : 1;
    const int64_t h = in[0] + sign * (sides_[0][0] + sides_[0][1]);
    const int64_t w = in[1] + sign * (sides_[1][0] + sides_[1][1]);
    if (h < 1 || w < 1) {
      fail("cropping " + sides_json(sides_).dump() + " leaves nothing of its input " +
           shape_text(in));
    }
    if (h > 65536 || w > 65536) {
      fail("padding " + sides_json(sides_).dump() + " makes its input " + shape_text(in) +
           " larger than 65536 on a side");
    }
    return {h, w, in[2]};
  }
  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& /*context*/) const override {
    const at::Tensor& x = inputs[0];
    const auto& [rows, columns] = sides_;
    if (!crop_) {
      return pad_image(x, rows[0], rows[1], columns[0], columns[1], 0.0);
    }
    return x.narrow(2, rows[0], x.size(2) - rows[0] - rows[1])
        .narrow(3, columns[0], x.size(3) - columns[0] - columns[1]);
  }
  void write_config(ordered_json& c) const override {
    c[crop_ ? "cropping" : "padding"] = sides_json(sides_);
    c["data_format"] = "channels_last";
  }

 private:
  bool crop_;
  std::array<Pair, 2> sides_{};
};

/// The indices and weights of TF's legacy bilinear resize along one axis
/// (alignCorners and halfPixelCenters false): output i reads input i / s.
struct Lerp {
  at::Tensor low, high, weight;
};
Lerp lerp_axis(int64_t in, int64_t factor, const at::TensorOptions& options) {
  const at::Tensor source =
      at::arange(in * factor, options.dtype(at::kDouble)).div_(static_cast<double>(factor));
  const at::Tensor low = source.floor().to(at::kLong);
  return {low, (low + 1).clamp_max(in - 1),
          (source - source.floor()).to(options.dtype().toScalarType())};
}

class UpSampling2D : public LayerOf<UpSampling2D> {
 public:
  explicit UpSampling2D(const ordered_json& c) {
    require_channels_last(c);
    if (const ordered_json* size = find(c, "size"); size != nullptr && !size->is_array()) {
      // TF.js 4.22 reads a single number as no size at all (NaN shapes).
      fail("field \"size\" is " + size->dump() + ": TF.js needs [rows, columns]");
    }
    size_ = get_pair(c, "size", {2, 2});
    if (const ordered_json* v = find(c, "interpolation")) {
      if (*v != "nearest" && *v != "bilinear") {
        fail("field \"interpolation\" is " + v->dump() +
             " (TF.js supports \"nearest\" and \"bilinear\")");
      }
      bilinear_ = *v == "bilinear";
    }
  }
  const char* class_name() const override { return "UpSampling2D"; }
  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*w*/) override {
    const Shape& in = single(inputs);
    require_image(in);
    if (in[0] * size_[0] > 65536 || in[1] * size_[1] > 65536) {
      fail("size " + pair_text(size_) + " makes its input " + shape_text(in) +
           " larger than 65536 on a side");
    }
    return {in[0] * size_[0], in[1] * size_[1], in[2]};
  }
  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& /*context*/) const override {
    const at::Tensor& x = inputs[0];
    if (!bilinear_) {
      // TF's nearest resize by a whole factor repeats every pixel.
      return x.repeat_interleave(size_[0], 2).repeat_interleave(size_[1], 3);
    }
    const Lerp rows = lerp_axis(x.size(2), size_[0], x.options());
    const Lerp columns = lerp_axis(x.size(3), size_[1], x.options());
    const at::Tensor top = x.index_select(2, rows.low);
    const at::Tensor bottom = x.index_select(2, rows.high);
    const at::Tensor r = top + (bottom - top) * rows.weight.view({1, 1, -1, 1});
    const at::Tensor left = r.index_select(3, columns.low);
    const at::Tensor right = r.index_select(3, columns.high);
    return left + (right - left) * columns.weight.view({1, 1, 1, -1});
  }
  void write_config(ordered_json& c) const override {
    c["size"] = {size_[0], size_[1]};
    c["data_format"] = "channels_last";
    c["interpolation"] = bilinear_ ? "bilinear" : "nearest";
  }

 private:
  Pair size_{2, 2};
  bool bilinear_ = false;
};

/// A list field of whole numbers, 1 to 3 of them.
std::vector<int64_t> get_dims(const ordered_json& c, const char* key, bool allow_unknown) {
  const ordered_json* v = find(c, key);
  if (v == nullptr || !v->is_array() || v->empty() || v->size() > 3) {
    fail(std::string("field \"") + key + "\" must be a list of 1 to 3 whole numbers, found " +
         (v == nullptr ? std::string("nothing") : v->dump()));
  }
  std::vector<int64_t> dims;
  for (const auto& d : *v) {
    if (allow_unknown && d.is_null()) {  // TF.js writes a -1 as null
      dims.push_back(-1);
      continue;
    }
    if (!d.is_number_integer() || d.get<int64_t>() > 65536 ||
        (d.get<int64_t>() < 1 && !(allow_unknown && d.get<int64_t>() == -1))) {
      fail(std::string("field \"") + key + "\" holds " + d.dump() + " (found " + v->dump() + ")");
    }
    dims.push_back(d.get<int64_t>());
  }
  return dims;
}

class Reshape : public LayerOf<Reshape> {
 public:
  explicit Reshape(const ordered_json& c) : target_(get_dims(c, "target_shape", true)) {
    if (std::count(target_.begin(), target_.end(), -1) > 1) {
      fail("field \"target_shape\" may hold one unknown size (-1) only");
    }
  }
  const char* class_name() const override { return "Reshape"; }
  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*w*/) override {
    const Shape& in = single(inputs);
    int64_t values = 1;
    for (const int64_t d : in) {
      values *= d;
    }
    int64_t known = 1;
    for (const int64_t d : target_) {
      known *= d == -1 ? 1 : d;
    }
    Shape out = target_;
    for (int64_t& d : out) {
      if (d == -1) {
        d = values % known == 0 ? values / known : 0;
      }
    }
    int64_t total = 1;
    for (const int64_t d : out) {
      total *= d;
    }
    if (total != values) {
      fail("target_shape " + ordered_json(target_).dump() + " does not hold the " +
           std::to_string(values) + " values of its input " + shape_text(in));
    }
    return out;
  }
  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& /*context*/) const override {
    std::vector<int64_t> shape = {inputs[0].size(0)};
    shape.insert(shape.end(), target_.begin(), target_.end());
    return from_tfjs_order(to_tfjs_order(inputs[0]).reshape(shape));
  }
  void write_config(ordered_json& c) const override { c["target_shape"] = target_; }

 private:
  std::vector<int64_t> target_;
};

class Permute : public LayerOf<Permute> {
 public:
  explicit Permute(const ordered_json& c) : dims_(get_dims(c, "dims", false)) {
    std::vector<int64_t> sorted = dims_;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size(); ++i) {
      if (sorted[i] != static_cast<int64_t>(i) + 1) {
        fail("field \"dims\" is " + ordered_json(dims_).dump() + ": not an ordering of 1.." +
             std::to_string(sorted.size()));
      }
    }
  }
  const char* class_name() const override { return "Permute"; }
  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& /*w*/) override {
    const Shape& in = single(inputs);
    if (in.size() != dims_.size()) {
      fail("dims " + ordered_json(dims_).dump() + " do not order the axes of its input " +
           shape_text(in));
    }
    Shape out;
    for (const int64_t d : dims_) {
      out.push_back(in[static_cast<size_t>(d - 1)]);
    }
    return out;
  }
  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& /*context*/) const override {
    std::vector<int64_t> order = {0};
    order.insert(order.end(), dims_.begin(), dims_.end());
    return from_tfjs_order(to_tfjs_order(inputs[0]).permute(order));
  }
  void write_config(ordered_json& c) const override { c["dims"] = dims_; }

 private:
  std::vector<int64_t> dims_;
};

/// Rescaling: x * scale + offset.
class Rescaling : public ElementwiseOf<Rescaling> {
 public:
  explicit Rescaling(const ordered_json& c) {
    if (find(c, "scale") == nullptr) {
      fail("missing field \"scale\"");
    }
    scale_ = get_number(c, "scale", 1.0);
    offset_ = get_number(c, "offset", 0.0);
  }
  const char* class_name() const override { return "Rescaling"; }
  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& /*w*/,
                  const CallContext& /*context*/) const override {
    return inputs[0] * scale_ + offset_;
  }
  void write_config(ordered_json& c) const override {
    c["scale"] = scale_;
    c["offset"] = offset_;
  }

 private:
  double scale_ = 1.0;
  double offset_ = 0.0;
};

}  // namespace

std::vector<LayerClass> reshaping_layers() {
  return {{"ZeroPadding2D",
           [](const ordered_json& c) -> std::unique_ptr<Layer> {
             return std::make_unique<Sides2D>(c, false);
           }},
          {"Cropping2D",
           [](const ordered_json& c) -> std::unique_ptr<Layer> {
             return std::make_unique<Sides2D>(c, true);
           }},
          {"UpSampling2D", make<UpSampling2D>},
          {"Reshape", make<Reshape>},
          {"Permute", make<Permute>},
          {"Rescaling", make<Rescaling>}};
}

}  // namespace mnist::layers
