// No-grad evaluation loop; sums stay on the device until the end.
#include "mnist/evaluate.hpp"

#include <algorithm>
#include <limits>

#include <ATen/ATen.h>
#include <torch/utils.h>

namespace mnist {

EvalResult evaluate(ConvNet& model, const Dataset& data, int64_t batch_size) {
  EvalResult result;
  result.count = data.size();
  if (result.count == 0) {
    result.loss = result.accuracy = std::numeric_limits<double>::quiet_NaN();
    return result;
  }
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const c10::Device device = model->conv1->weight.device();
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions(device).dtype(at::kDouble));
  at::Tensor correct = at::zeros({}, at::TensorOptions(device).dtype(at::kLong));
  for (int64_t start = 0; start < result.count; start += batch_size) {
    const int64_t len = std::min(batch_size, result.count - start);
    const at::Tensor x = data.images.narrow(0, start, len).to(device);
    const at::Tensor y = data.labels.narrow(0, start, len).to(device);
    const at::Tensor logits = model->forward(x).to(at::kFloat);
    loss_sum += at::cross_entropy_loss(logits, y, /*weight=*/{},
                                       at::Reduction::Sum)
                    .to(at::kDouble);
    correct += logits.argmax(1).eq(y).sum();
  }
  model->train(was_training);
  const auto n = static_cast<double>(result.count);
  result.loss = loss_sum.item<double>() / n;
  result.accuracy = static_cast<double>(correct.item<int64_t>()) / n;
  return result;
}

}  // namespace mnist
