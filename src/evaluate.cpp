// No-grad evaluation loop; sums stay on the device until the end.
#include "mnist/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/idx.hpp"

namespace mnist {

at::Tensor tfjs_categorical_crossentropy(const at::Tensor& logits,
                                         const at::Tensor& labels,
                                         int64_t reduction) {
  constexpr double kEpsilon = 1e-7;  // tfjs-layers' epsilon()
  const at::Tensor log_p = at::log_softmax(logits, 1).gather(1, labels.unsqueeze(1)).squeeze(1);
  // clamp passes no gradient where it clips, as TF.js's clipByValue.
  const at::Tensor clipped = log_p.clamp(std::log(kEpsilon), std::log1p(-kEpsilon));
  if (reduction == at::Reduction::None) {
    return -clipped;  // per image, for class weights (class_weight.cpp)
  }
  return reduction == at::Reduction::Sum ? -clipped.sum() : -clipped.mean();
}

EvalResult evaluate(Model& model, const Dataset& data, int64_t batch_size, Precision precision) {
  check_input(model, data.images);
  EvalResult result;
  result.count = data.size();
  // One row and column per output: ten, or the size of the label set.
  const int64_t classes = model_outputs(model);
  result.confusion = at::zeros({classes, classes}, at::kLong);
  if (result.count == 0) {
    result.loss = result.accuracy = std::numeric_limits<double>::quiet_NaN();
    return result;
  }
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const c10::Device device = model->device();
  const auto on_device = at::TensorOptions(device);
  at::Tensor loss_sum = at::zeros({}, on_device.dtype(at::kDouble));
  at::Tensor pairs = at::zeros({classes * classes}, on_device.dtype(at::kLong));
  for (int64_t start = 0; start < result.count; start += batch_size) {
    const int64_t len = std::min(batch_size, result.count - start);
    const at::Tensor x = data.slice(start, len).to(device);
    const at::Tensor y = data.labels.narrow(0, start, len).to(device);
    at::Tensor logits;
    {
      const AutocastGuard autocast(precision, device);
      logits = model->forward(x);
    }
    logits = logits.to(at::kFloat);
    loss_sum += tfjs_categorical_crossentropy(logits, y, at::Reduction::Sum).to(at::kDouble);
    pairs += at::bincount(y * classes + logits.argmax(1), /*weights=*/{},
                          /*minlength=*/classes * classes);
  }
  model->train(was_training);
  const auto n = static_cast<double>(result.count);
  result.confusion = pairs.view({classes, classes}).cpu();
  result.loss = loss_sum.item<double>() / n;
  result.accuracy = static_cast<double>(result.confusion.trace().item<int64_t>()) / n;
  return result;
}

at::Tensor per_class_accuracy(const at::Tensor& confusion) {
  const at::Tensor c = confusion.to(at::kDouble);
  return c.diagonal() / c.sum(1);
}

}  // namespace mnist
