// The training loop: TF.js's model.fit() semantics on libtorch, reporting
// progress through callbacks (the core never prints).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <c10/core/Device.h>

#include "mnist/data.hpp"
#include "mnist/model.hpp"
#include "mnist/optimizer.hpp"

namespace mnist {

struct TrainConfig {
  int64_t epochs = 20;       ///< mnist-node main.js default
  int64_t batch_size = 128;  ///< mnist-node main.js default
  c10::Device device = c10::Device(c10::kCPU);
  RmsPropOptions optimizer;  ///< TF.js 'rmsprop'
  /// Calls on_batch every this many batches (and after the last one).
  int64_t progress_every = 20;
};

/// Running figures inside an epoch (means over the batches done so far).
struct BatchProgress {
  int64_t epoch = 0;  ///< 1-based
  int64_t epochs = 0;
  int64_t batch = 0;  ///< 1-based, batches done
  int64_t batches = 0;
  double loss = 0.0;
  double accuracy = 0.0;
  double seconds = 0.0;  ///< since the epoch started
};

/// The figures TF.js's fit() reports per epoch, plus timing.
struct EpochStats {
  int64_t epoch = 0;  ///< 1-based
  double loss = 0.0;
  double accuracy = 0.0;
  double val_loss = 0.0;  ///< NaN when there is no validation set
  double val_accuracy = 0.0;
  double seconds = 0.0;        ///< wall time of the epoch, validation included
  double train_seconds = 0.0;  ///< wall time of the training steps alone
  int64_t batches = 0;         ///< training steps in the epoch
  double images_per_second = 0.0;  ///< training images / train_seconds
};

struct TrainCallbacks {
  std::function<void(const BatchProgress&)> on_batch;
  std::function<void(const EpochStats&)> on_epoch;
};

/// Trains `model` (already on cfg.device) with RMSprop and categorical
/// cross-entropy for cfg.epochs epochs: `train` is reshuffled every epoch
/// (libtorch's global generator: seed it with torch::manual_seed), dropout
/// is on while training, and `validation` (may be empty) is evaluated after
/// each epoch. Both datasets stay resident; batches are gathered by index.
std::vector<EpochStats> train(ConvNet& model,
                              const Dataset& train,
                              const Dataset& validation,
                              const TrainConfig& cfg,
                              const TrainCallbacks& callbacks);

/// Copies every parameter into channels-last strides (including the first
/// conv, whose 1-channel weight .contiguous(ChannelsLast) would leave as it
/// is: perf-notes trap 4). oneDNN then keeps the whole net in NHWC.
void to_channels_last(ConvNet& model);

}  // namespace mnist
