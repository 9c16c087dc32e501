// The convnet of mission.md: layers, TF.js initialisers, parameter naming and
// the TF.js-format summary table.
#include "mnist/model.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/nn/functional/dropout.h>
#include <torch/utils.h>

namespace mnist {

namespace {

torch::nn::Conv2dOptions conv(int64_t in, int64_t out) {
  return torch::nn::Conv2dOptions(in, out, /*kernel_size=*/3).bias(true);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[null";
  for (int64_t d : shape) {
    out << "," << d;
  }
  out << "]";
  return out.str();
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

}  // namespace

const std::vector<LayerSpec>& layer_specs() {
  static const std::vector<LayerSpec> specs = {
      {"conv2d_Conv2D1", "Conv2D", {28, 28, 1}, {26, 26, 32}, 320},
      {"conv2d_Conv2D2", "Conv2D", {26, 26, 32}, {24, 24, 32}, 9248},
      {"max_pooling2d_MaxPooling2D1", "MaxPooling2D", {24, 24, 32},
       {12, 12, 32}, 0},
      {"conv2d_Conv2D3", "Conv2D", {12, 12, 32}, {10, 10, 64}, 18496},
      {"conv2d_Conv2D4", "Conv2D", {10, 10, 64}, {8, 8, 64}, 36928},
      {"max_pooling2d_MaxPooling2D2", "MaxPooling2D", {8, 8, 64}, {4, 4, 64},
       0},
      {"flatten_Flatten1", "Flatten", {4, 4, 64}, {1024}, 0},
      {"dropout_Dropout1", "Dropout", {1024}, {1024}, 0},
      {"dense_Dense1", "Dense", {1024}, {512}, 524800},
      {"dropout_Dropout2", "Dropout", {512}, {512}, 0},
      {"dense_Dense2", "Dense", {512}, {10}, 5130},
  };
  return specs;
}

ConvNetImpl::ConvNetImpl() {
  conv1 = register_module("conv1", torch::nn::Conv2d(conv(1, 32)));
  conv2 = register_module("conv2", torch::nn::Conv2d(conv(32, 32)));
  conv3 = register_module("conv3", torch::nn::Conv2d(conv(32, 64)));
  conv4 = register_module("conv4", torch::nn::Conv2d(conv(64, 64)));
  dense1 = register_module("dense1", torch::nn::Linear(1024, 512));
  dense2 = register_module("dense2", torch::nn::Linear(512, 10));
  reset_tfjs();
}

at::Tensor ConvNetImpl::forward(at::Tensor x) {
  x = conv1->forward(x).relu_();
  x = conv2->forward(x).relu_();
  x = at::max_pool2d(x, /*kernel_size=*/{2, 2});
  x = conv3->forward(x).relu_();
  x = conv4->forward(x).relu_();
  x = at::max_pool2d(x, /*kernel_size=*/{2, 2});
  // TF.js flattens NHWC: feature index h*256 + w*64 + c. Flattening in that
  // order here keeps dense1's rows in TF.js order (and is free for a
  // channels-last tensor, whose NHWC permutation is contiguous).
  x = x.permute({0, 2, 3, 1}).flatten(1);
  x = at::dropout(x, kDropout1Rate, is_training());
  x = dense1->forward(x).relu_();
  x = at::dropout(x, kDropout2Rate, is_training());
  return dense2->forward(x);
}

void glorot_normal_truncated_(at::Tensor weight,
                              int64_t fan_in,
                              int64_t fan_out) {
  // tfjs-layers initializers.ts VarianceScaling (scale 1, fan_avg, normal):
  // stddev = sqrt(scale / ((fan_in + fan_out) / 2)), drawn with
  // truncatedNormal, which redraws values more than 2 stddev from the mean.
  torch::NoGradGuard no_grad;
  const double stddev =
      std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  weight.normal_(0.0, stddev);
  while (true) {
    const at::Tensor outside = weight.abs() > 2.0 * stddev;
    const int64_t count = outside.sum().item<int64_t>();
    if (count == 0) {
      break;
    }
    weight.masked_scatter_(outside,
                           at::empty({count}, weight.options()).normal_(0.0, stddev));
  }
}

void ConvNetImpl::reset_tfjs() {
  torch::NoGradGuard no_grad;
  for (auto* layer : {&conv1, &conv2, &conv3, &conv4}) {
    const at::Tensor& w = (*layer)->weight;  // [out, in, kh, kw]
    const int64_t receptive = w.size(2) * w.size(3);
    glorot_normal_truncated_(w, w.size(1) * receptive, w.size(0) * receptive);
    (*layer)->bias.zero_();
  }
  for (auto* layer : {&dense1, &dense2}) {
    const at::Tensor& w = (*layer)->weight;  // [out, in]
    glorot_normal_truncated_(w, w.size(1), w.size(0));
    (*layer)->bias.zero_();
  }
}

std::vector<std::pair<std::string, at::Tensor>> ConvNetImpl::tfjs_weights()
    const {
  return {{"conv2d_Conv2D1/kernel", conv1->weight},
          {"conv2d_Conv2D1/bias", conv1->bias},
          {"conv2d_Conv2D2/kernel", conv2->weight},
          {"conv2d_Conv2D2/bias", conv2->bias},
          {"conv2d_Conv2D3/kernel", conv3->weight},
          {"conv2d_Conv2D3/bias", conv3->bias},
          {"conv2d_Conv2D4/kernel", conv4->weight},
          {"conv2d_Conv2D4/bias", conv4->bias},
          {"dense_Dense1/kernel", dense1->weight},
          {"dense_Dense1/bias", dense1->bias},
          {"dense_Dense2/kernel", dense2->weight},
          {"dense_Dense2/bias", dense2->bias}};
}

int64_t count_params(const ConvNet& model) {
  int64_t total = 0;
  for (const auto& p : model->parameters()) {
    total += p.numel();
  }
  return total;
}

std::string summary_text() {
  // tfjs-layers printSummary for a Sequential model: line length 90,
  // columns ending at 32%, 61%, 89% and 100% of it.
  constexpr size_t kLine = 90;
  const std::vector<size_t> positions = {28, 54, 80, 90};
  std::ostringstream out;
  out << std::string(kLine, '_') << "\n"
      << format_row({"Layer (type)", "Input Shape", "Output shape", "Param #"},
                    positions)
      << "\n"
      << std::string(kLine, '=') << "\n";
  const auto& specs = layer_specs();
  int64_t total = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const LayerSpec& s = specs[i];
    out << format_row({s.name + " (" + s.class_name + ")",
                       "[" + shape_text(s.input_shape) + "]",
                       shape_text(s.output_shape), std::to_string(s.params)},
                      positions)
        << "\n"
        << std::string(kLine, i + 1 == specs.size() ? '=' : '_') << "\n";
    total += s.params;
  }
  out << "Total params: " << total << "\n"
      << "Trainable params: " << total << "\n"
      << "Non-trainable params: 0\n"
      << std::string(kLine, '_') << "\n";
  return out.str();
}

at::Tensor predict_proba(ConvNet& model, at::Tensor images, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const at::Device device = model->conv1->weight.device();
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += batch_size) {
    const int64_t len = std::min(batch_size, images.size(0) - start);
    at::Tensor batch = images.narrow(0, start, len).to(device);
    parts.push_back(at::softmax(model->forward(batch), /*dim=*/1));
  }
  model->train(was_training);
  if (parts.empty()) {
    return at::empty({0, 10}, images.options().device(device));
  }
  return at::cat(parts).to(images.device());
}

}  // namespace mnist
