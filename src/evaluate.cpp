// No-grad evaluation loop; sums stay on the device until the end.
#include "mnist/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
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

namespace {

/// numerator / denominator, or kZeroDivision (flagged) where the
/// denominator is 0: scikit-learn's _prf_divide.
double divide(double numerator, double denominator, bool& undefined) {
  undefined = denominator == 0.0;
  return undefined ? kZeroDivision : numerator / denominator;
}

}  // namespace

ClassMetrics per_class_metrics(const at::Tensor& confusion) {
  if (!confusion.defined() || confusion.dim() != 2 || confusion.size(0) != confusion.size(1) ||
      !at::isIntegralType(confusion.scalar_type(), /*includeBool=*/false)) {
    const std::string found =
        confusion.defined() ? c10::str(confusion.scalar_type(), " ", confusion.sizes()) : "none";
    throw DataError("confusion matrix: expected [K,K] integer counts, got " + found);
  }
  const at::Tensor counts = confusion.to(at::kLong).cpu().contiguous();
  if (counts.numel() > 0 && counts.min().item<int64_t>() < 0) {
    throw DataError("confusion matrix: expected counts >= 0, found " +
                    std::to_string(counts.min().item<int64_t>()));
  }
  const int64_t k = counts.size(0);
  const int64_t* c = counts.data_ptr<int64_t>();
  ClassMetrics out;
  int64_t total = 0;
  for (int64_t i = 0; i < k; ++i) {
    int64_t true_sum = 0;  // row i: the class's images
    int64_t pred_sum = 0;  // column i: the images predicted as it
    for (int64_t j = 0; j < k; ++j) {
      true_sum += c[i * k + j];
      pred_sum += c[j * k + i];
    }
    const auto tp = static_cast<double>(c[i * k + i]);
    ClassScores s;
    s.support = true_sum;
    s.precision = divide(tp, static_cast<double>(pred_sum), s.precision_undefined);
    s.recall = divide(tp, static_cast<double>(true_sum), s.recall_undefined);
    s.f1 = divide(2.0 * tp, static_cast<double>(true_sum + pred_sum), s.f1_undefined);
    out.per_class.push_back(s);
    total += true_sum;
  }
  ClassScores& macro = out.macro_avg;
  ClassScores& weighted = out.weighted_avg;
  macro.support = weighted.support = total;
  for (const ClassScores& s : out.per_class) {
    macro.precision += s.precision;
    macro.recall += s.recall;
    macro.f1 += s.f1;
    const auto w = static_cast<double>(s.support);
    weighted.precision += w * s.precision;
    weighted.recall += w * s.recall;
    weighted.f1 += w * s.f1;
  }
  // np.average's order: the (weighted) sum, then one division.
  const auto finish = [](ClassScores& avg, double divisor) {
    if (divisor == 0.0) {
      avg.precision = avg.recall = avg.f1 = kZeroDivision;
      avg.precision_undefined = avg.recall_undefined = avg.f1_undefined = true;
      return;
    }
    avg.precision /= divisor;
    avg.recall /= divisor;
    avg.f1 /= divisor;
  };
  finish(macro, static_cast<double>(k));
  finish(weighted, static_cast<double>(total));
  return out;
}

}  // namespace mnist
