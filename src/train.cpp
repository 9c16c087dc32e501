// The training loop (TF.js fit() semantics): shuffle, batch by index into the
// resident dataset, RMSprop step, metrics summed on the device.
#include "mnist/train.hpp"

#include <chrono>
#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "mnist/error.hpp"
#include "mnist/evaluate.hpp"

namespace mnist {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

constexpr int64_t kValidationBatch = 256;

}  // namespace

void to_channels_last(ConvNet& model) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) {
    if (p.dim() == 4) {
      p.set_data(at::empty_like(p, at::MemoryFormat::ChannelsLast).copy_(p));
    }
  }
}

std::vector<EpochStats> train(ConvNet& model,
                              const Dataset& train,
                              const Dataset& validation,
                              const TrainConfig& cfg,
                              const TrainCallbacks& callbacks) {
  if (cfg.epochs < 1 || cfg.batch_size < 1) {
    throw ConfigError("epochs and batch size must be at least 1");
  }
  if (train.size() == 0) {
    throw ConfigError("no training images left after the validation split");
  }
  const c10::Device device = cfg.device;
  const at::Tensor images = train.images.to(device);
  const at::Tensor labels = train.labels.to(device);
  const Dataset val = validation.size() == 0
                          ? Dataset{}
                          : Dataset{validation.images.to(device), validation.labels.to(device)};
  const int64_t n = train.size();
  const int64_t batches = (n + cfg.batch_size - 1) / cfg.batch_size;
  const auto on_device = at::TensorOptions(device);

  RmsProp optimizer(model->parameters(), cfg.optimizer);
  std::vector<EpochStats> history;
  for (int64_t epoch = 1; epoch <= cfg.epochs; ++epoch) {
    const auto start = Clock::now();
    model->train();
    const at::Tensor order = at::randperm(n, at::kLong).to(device);
    at::Tensor loss_sum = at::zeros({}, on_device.dtype(at::kFloat));
    at::Tensor correct = at::zeros({}, on_device.dtype(at::kLong));
    for (int64_t b = 0; b < batches; ++b) {
      const int64_t first = b * cfg.batch_size;
      const int64_t len = std::min(cfg.batch_size, n - first);
      const at::Tensor idx = order.narrow(0, first, len);
      const at::Tensor y = labels.index_select(0, idx);

      optimizer.zero_grad();
      const at::Tensor logits = model->forward(images.index_select(0, idx));
      const at::Tensor loss = at::cross_entropy_loss(logits, y);
      loss.backward();
      optimizer.step();

      loss_sum += loss.detach() * static_cast<double>(len);
      correct += logits.detach().argmax(1).eq(y).sum();
      if (callbacks.on_batch && ((b + 1) % cfg.progress_every == 0 || b + 1 == batches)) {
        const double seen = static_cast<double>(first + len);
        callbacks.on_batch({epoch, cfg.epochs, b + 1, batches,
                            loss_sum.item<double>() / seen,
                            static_cast<double>(correct.item<int64_t>()) / seen,
                            seconds_since(start)});
      }
    }
    EpochStats stats;
    stats.epoch = epoch;
    stats.loss = loss_sum.item<double>() / static_cast<double>(n);
    stats.accuracy = static_cast<double>(correct.item<int64_t>()) / static_cast<double>(n);
    stats.batches = batches;
    stats.train_seconds = seconds_since(start);
    stats.images_per_second = static_cast<double>(n) / stats.train_seconds;
    const EvalResult v = evaluate(model, val, kValidationBatch);
    stats.val_loss = v.loss;
    stats.val_accuracy = v.accuracy;
    stats.seconds = seconds_since(start);
    history.push_back(stats);
    if (callbacks.on_epoch) {
      callbacks.on_epoch(stats);
    }
  }
  return history;
}

}  // namespace mnist
