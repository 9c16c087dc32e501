// No-grad evaluation loop; sums stay on the device until the end.
#include "mnist/evaluate.hpp"

#include <algorithm>
#include <limits>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/idx.hpp"

namespace mnist {

EvalResult evaluate(Model& model, const Dataset& data, int64_t batch_size, Precision precision) {
  EvalResult result;
  result.count = data.size();
  result.confusion = at::zeros({kNumClasses, kNumClasses}, at::kLong);
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
  at::Tensor pairs = at::zeros({kNumClasses * kNumClasses}, on_device.dtype(at::kLong));
  for (int64_t start = 0; start < result.count; start += batch_size) {
    const int64_t len = std::min(batch_size, result.count - start);
    const at::Tensor x = data.images.narrow(0, start, len).to(device);
    const at::Tensor y = data.labels.narrow(0, start, len).to(device);
    at::Tensor logits;
    {
      const AutocastGuard autocast(precision, device);
      logits = model->forward(x);
    }
    logits = logits.to(at::kFloat);
    loss_sum +=
        at::cross_entropy_loss(logits, y, /*weight=*/{}, at::Reduction::Sum).to(at::kDouble);
    pairs += at::bincount(y * kNumClasses + logits.argmax(1), /*weights=*/{},
                          /*minlength=*/kNumClasses * kNumClasses);
  }
  model->train(was_training);
  const auto n = static_cast<double>(result.count);
  result.confusion = pairs.view({kNumClasses, kNumClasses}).cpu();
  result.loss = loss_sum.item<double>() / n;
  result.accuracy = static_cast<double>(result.confusion.trace().item<int64_t>()) / n;
  return result;
}

at::Tensor per_class_accuracy(const at::Tensor& confusion) {
  const at::Tensor c = confusion.to(at::kDouble);
  return c.diagonal() / c.sum(1);
}

}  // namespace mnist
