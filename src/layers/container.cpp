// A Sequential model nested in another model as one of its layers, as
// tfjs-layers' Sequential is a Layer (engine/container.ts, models.ts): its
// layers called one after the other, their weights named by their own layers
// ("<inner layer>/kernel"), saved as TF.js writes it.
#include <optional>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "layers/layer_util.hpp"

namespace mnist {

namespace layers {
namespace {

class NestedSequential : public LayerOf<NestedSequential> {
 public:
  NestedSequential(std::vector<LayerPtr> layers, std::optional<Shape> own_input)
      : layers_(std::move(layers)), own_input_(std::move(own_input)) {
    if (layers_.empty()) {
      fail("a nested Sequential model has no layers");
    }
  }
  const char* class_name() const override { return "Sequential"; }
  bool ends_in_softmax() const override { return layers_.back()->ends_in_softmax(); }
  size_t own_calls() const override { return own_input_ ? 1 : 0; }
  bool has_trainable_field() const override { return false; }
  std::string weight_name(const WeightSpec& w) const override { return w.name; }

  void set_trainable(bool value) override {
    // TF.js's Container: setting a model's trainable sets its layers'.
    trainable = value;
    for (LayerPtr& layer : layers_) {
      layer->set_trainable(value);
    }
  }

  Shape build(const std::vector<Shape>& inputs, std::vector<WeightSpec>& weights) override {
    Shape shape = single(inputs);
    if (own_input_ && *own_input_ != shape) {
      fail("its first layer declares the input " + shape_text(*own_input_) +
           ", but it is called on " + shape_text(shape));
    }
    counts_.clear();
    for (LayerPtr& layer : layers_) {
      Layer& l = *layer;
      std::vector<WeightSpec> own;
      l.input_shape = shape;
      try {
        shape = l.build({shape}, own);
      } catch (const FormatError& e) {
        fail("its layer " + l.name + " (" + l.class_name() + "): " + e.what());
      }
      l.output_shape = shape;
      for (WeightSpec& w : own) {
        w.name = l.weight_name(w);
        w.frozen = w.frozen || !l.trainable;
        weights.push_back(std::move(w));
      }
      counts_.push_back(own.size());
    }
    return shape;
  }

  at::Tensor call(const std::vector<at::Tensor>& inputs,
                  const std::vector<at::Tensor>& weights,
                  const CallContext& context) const override {
    at::Tensor x = inputs[0];
    size_t offset = 0;
    CallContext inner = context;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const std::vector<at::Tensor> own(
          weights.begin() + static_cast<std::ptrdiff_t>(offset),
          weights.begin() + static_cast<std::ptrdiff_t>(offset + counts_[i]));
      offset += counts_[i];
      inner.logits = context.logits && i + 1 == layers_.size();
      x = layers_[i]->call({std::move(x)}, own, inner);
    }
    return x;
  }

  void write_config(ordered_json& c) const override {
    c["name"] = name;
    c["layers"] = ordered_json::array();
    write_layers(c);
  }

  void refresh_config(ordered_json& saved) const override { write_layers(saved); }

 private:
  /// Its layers as TF.js's Sequential.getConfig writes them; the first with
  /// the input shape it declared.
  void write_layers(ordered_json& c) const {
    ordered_json list = ordered_json::array();
    for (size_t i = 0; i < layers_.size(); ++i) {
      ordered_json config = saved_config(*layers_[i]);
      if (i == 0 && own_input_ && !config.contains("batch_input_shape")) {
        config["batch_input_shape"] = ordered_json::array({nullptr});
        for (const int64_t d : *own_input_) {
          config["batch_input_shape"].push_back(d);
        }
        config["dtype"] = "float32";
      }
      list.push_back({{"class_name", layers_[i]->class_name()}, {"config", config}});
    }
    c["layers"] = list;
  }

  std::vector<LayerPtr> layers_;
  std::optional<Shape> own_input_;
  std::vector<size_t> counts_;  ///< the weights of each layer, in order
};

}  // namespace
}  // namespace layers

LayerPtr make_nested_sequential(std::vector<LayerPtr> layers, std::optional<Shape> own_input) {
  return LayerPtr(
      std::make_unique<layers::NestedSequential>(std::move(layers), std::move(own_input)));
}

nlohmann::ordered_json saved_config(const Layer& l) {
  nlohmann::ordered_json config = l.config;
  if (!config.is_object()) {
    config = nlohmann::ordered_json::object();
    l.write_config(config);
    config["name"] = l.name;
  }
  if (l.has_trainable_field()) {
    config["trainable"] = l.trainable;  // --freeze-up-to may have changed it
  }
  if (l.config.is_object()) {
    l.refresh_config(config);
  }
  return config;
}

}  // namespace mnist
