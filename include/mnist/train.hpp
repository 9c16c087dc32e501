// The training loop: TF.js's model.fit() semantics on libtorch, reporting
// progress through callbacks (the core never prints), stoppable between
// batches and resumable from a saved TrainState.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "mnist/augment.hpp"
#include "mnist/data.hpp"
#include "mnist/device.hpp"
#include "mnist/lr_schedule.hpp"
#include "mnist/model.hpp"
#include "mnist/optimizer.hpp"

namespace mnist {

struct TrainConfig {
  int64_t epochs = 20;       ///< total epochs (mnist-node main.js default)
  int64_t batch_size = 128;  ///< mnist-node main.js default
  c10::Device device = c10::Device(c10::kCPU);
  Precision precision = Precision::kFloat32;  ///< compute; weights stay fp32
  /// Calls on_batch every this many batches (and after the last one).
  int64_t progress_every = 20;
  /// On CUDA, replay full-size batches' steps as a CUDA graph when this
  /// build supports it (GraphedStep::available()).
  bool cuda_graphs = true;
  /// Shuffle the training images before every epoch (fit's shuffle: true);
  /// false keeps them in file order.
  bool shuffle = true;
  /// One weight per model output (class_weight.hpp): each training image's
  /// loss times its label's weight, the mean over the batch, as TF.js's
  /// fit({classWeight}); the accuracy and the validation figures stay
  /// unweighted, as TF.js reports them. Empty: none (the loss as always).
  std::vector<double> class_weights;
  /// Augmentation (augment.hpp): when set and enabled, every training batch
  /// is gathered and augmented on `augment_threads` CPU threads, up to
  /// `augment_depth` batches ahead of the step, and the step trains on
  /// those images (copied to the device; no CUDA graph). Unset: the batches
  /// are gathered by index as always.
  std::optional<Augmenter> augmenter;
  int augment_threads = 1;
  int augment_depth = 4;
  /// A learning-rate schedule (lr_schedule.hpp), planned for this run's
  /// steps per epoch and epochs: before every step the optimizer's rate is
  /// set to the plan's rate at that step's place in training ((epoch - 1) *
  /// steps per epoch + batch: a resumed run goes on with the same rates),
  /// and after every epoch to the rate after its last step, which Keras's
  /// callbacks read as optimizer.learning_rate and EpochStats reports. No
  /// CUDA graph then (it would replay the captured rate). Unset: the
  /// optimizer's rate as it is (what ReduceLROnPlateau may change).
  std::optional<LrPlan> lr_plan;
};

/// Running figures inside an epoch (means over the batches done so far).
struct BatchProgress {
  int64_t epoch = 0;  ///< 1-based
  int64_t epochs = 0;
  int64_t batch = 0;  ///< 1-based, batches done
  int64_t batches = 0;
  double loss = 0.0;
  double accuracy = 0.0;
  double seconds = 0.0;  ///< since the epoch (or the resumed part) started
};

/// The figures TF.js's fit() reports per epoch, plus timing.
struct EpochStats {
  int64_t epoch = 0;  ///< 1-based
  double loss = 0.0;
  double accuracy = 0.0;
  double val_loss = 0.0;  ///< NaN when there is no validation set
  double val_accuracy = 0.0;
  double seconds = 0.0;            ///< wall time of the epoch, validation included
  double train_seconds = 0.0;      ///< wall time of the training steps alone
  int64_t batches = 0;             ///< training steps in the epoch
  double images_per_second = 0.0;  ///< training images / train_seconds
  /// The optimizer's rate at the epoch's end (Keras's optimizer.learning_rate
  /// in on_epoch_end: with a schedule, its rate after the epoch's last step)
  double learning_rate = 0.0;
};

/// Where training stands: everything needed, with the model, the optimizer
/// and libtorch's generator state, to continue exactly where it stopped.
struct TrainState {
  int64_t epoch = 1;                ///< the epoch in progress or next (1-based)
  int64_t batch = 0;                ///< batches of `epoch` already done
  at::Tensor order;                 ///< [N] int64 shuffle of `epoch`; undefined at a boundary
  double loss_sum = 0;              ///< sum of batch loss * batch size so far in `epoch`
  int64_t correct = 0;              ///< correct predictions so far in `epoch`
  std::vector<EpochStats> history;  ///< finished epochs
};

struct TrainCallbacks {
  std::function<void(const BatchProgress&)> on_batch;
  std::function<void(const EpochStats&)> on_epoch;
  /// Called after on_epoch: true ends training after this epoch (Keras's
  /// model.stop_training, set by early stopping). on_checkpoint still runs.
  std::function<bool(const EpochStats&)> stop_training;
  /// Called after every finished epoch and when training stops early, with
  /// the state to save for resuming.
  std::function<void(const TrainState&)> on_checkpoint;
  /// Checked after each batch: when true, training stops after that batch.
  const std::atomic<bool>* stop = nullptr;
};

/// kFinished: all epochs ran; kStoppedEarly: stop_training ended it (the
/// run is complete); kStopped: interrupted through `stop` (resumable).
enum class TrainOutcome { kFinished, kStoppedEarly, kStopped };

/// Why `model` cannot be trained as TF.js would train it: its first layer
/// with a Layer::training_problem, as "layer NAME (CLASS): PROBLEM; predict,
/// evaluate and convert use such a model as it is"; "" when there is none.
std::string training_problem(const Model& model);

/// Trains `model` (already on cfg.device; its last layer must be softmax and
/// no layer may have a training_problem: ConfigError otherwise)
/// with `optimizer` and categorical cross-entropy until cfg.epochs epochs
/// are done, starting from `state` (a fresh TrainState starts at epoch 1).
/// Each epoch shuffles `train` with libtorch's global generator (seed it
/// with torch::manual_seed) unless cfg.shuffle is off, keeps dropout on, and then evaluates
/// `validation` (may be empty). Both datasets stay resident on the device;
/// batches are gathered by index (or, with cfg.augmenter, gathered and
/// augmented on CPU threads from `train`'s CPU copy).
TrainOutcome train(Model& model,
                   Optimizer& optimizer,
                   const Dataset& train,
                   const Dataset& validation,
                   const TrainConfig& cfg,
                   TrainState& state,
                   const TrainCallbacks& callbacks);

}  // namespace mnist
