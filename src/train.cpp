// The training loop (TF.js fit() semantics): shuffle, batch by index into the
// resident dataset, RMSprop step, metrics summed on the device.
#include "mnist/train.hpp"

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include "mnist/class_weight.hpp"
#include "mnist/cuda_graph.hpp"
#include "mnist/error.hpp"
#include "mnist/evaluate.hpp"

namespace mnist {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

std::string training_problem(const Model& model) {
  for (const LayerPtr& l : model->spec().layers) {  // the one place this reads the layers
    if (!l->training_problem.empty()) {
      return "layer " + l->name + " (" + l->class_name() + "): " + l->training_problem +
             "; predict, evaluate and convert use such a model as it is";
    }
  }
  return "";
}

TrainOutcome train(Model& model,
                   Optimizer& optimizer,
                   const Dataset& train,
                   const Dataset& validation,
                   const TrainConfig& cfg,
                   TrainState& state,
                   const TrainCallbacks& callbacks) {
  if (cfg.epochs < 1 || cfg.batch_size < 1) {
    throw ConfigError("epochs and batch size must be at least 1");
  }
  if (train.size() == 0) {
    throw ConfigError("no training images left after the validation split");
  }
  if (model_outputs(model) == 0) {
    throw ConfigError(
        "the model's output must be one probability per class ([null,K]) to train it with "
        "categorical cross-entropy");
  }
  if (!model->ends_in_softmax()) {
    throw ConfigError(
        "the model's last layer must apply softmax to train it with "
        "categorical cross-entropy");
  }
  if (const std::string problem = training_problem(model); !problem.empty()) {
    throw ConfigError(problem);
  }
  check_input(model, train.images);
  if (!cfg.class_weights.empty() &&
      static_cast<int64_t>(cfg.class_weights.size()) != model_outputs(model)) {
    throw ConfigError("the model has " + std::to_string(model_outputs(model)) + " outputs, " +
                      std::to_string(cfg.class_weights.size()) + " class weights were given");
  }
  const c10::Device device = cfg.device;
  const Dataset data = train.to(device);
  const at::Tensor& labels = data.labels;
  const Dataset val = validation.size() == 0 ? Dataset{} : validation.to(device);
  const int64_t n = train.size();
  // A batch larger than the training set is the whole set (as Keras does),
  // and no arithmetic below can overflow.
  const int64_t batch_size = std::min(cfg.batch_size, n);
  const int64_t batches = (n + batch_size - 1) / batch_size;
  const auto on_device = at::TensorOptions(device);

  // Metric sums stay on the device (and in place, for a captured step).
  const at::Tensor loss_sum = at::zeros({}, on_device.dtype(at::kDouble));
  const at::Tensor correct = at::zeros({}, on_device.dtype(at::kLong));
  const bool regularized = model->regularized();
  // TF.js's per-image weights are a float32 tensor (training_utils'
  // standardizeWeights): the weights rounded to float32, on the device.
  const at::Tensor class_weights =
      cfg.class_weights.empty()
          ? at::Tensor()
          : at::tensor(cfg.class_weights, at::kDouble).to(at::kFloat).to(device);
  // One step on the images `x` of records `idx`.
  const auto step_on = [&](const at::Tensor& idx, const at::Tensor& x) {
    const at::Tensor y = labels.index_select(0, idx);
    optimizer.zero_grad();
    at::Tensor logits;
    {
      const AutocastGuard autocast(cfg.precision, device);
      logits = model->forward(x);
    }
    at::Tensor loss =
        class_weights.defined()
            ? weighted_categorical_crossentropy(logits.to(at::kFloat), y, class_weights)
            : tfjs_categorical_crossentropy(logits.to(at::kFloat), y);
    if (regularized) {
      loss = loss + model->regularization_loss();  // as TF.js's fit: in the loss it reports
    }
    loss.backward();
    optimizer.step();
    loss_sum.add_(loss.detach() * static_cast<double>(idx.size(0)));
    correct.add_(logits.detach().argmax(1).eq(y).sum());
  };
  const auto step = [&](const at::Tensor& idx) { step_on(idx, data.gather(idx)); };
  // Augmented batches come from the CPU threads (augment.hpp); a captured
  // CUDA graph replays a step that gathers by index, so none is made then.
  const bool augmenting = cfg.augmenter.has_value() && cfg.augmenter->spec().enabled();
  const Dataset source = augmenting ? train.to(c10::Device(c10::kCPU)) : Dataset{};
  const LrPlan* lr_plan = cfg.lr_plan ? &*cfg.lr_plan : nullptr;
  if (lr_plan != nullptr && lr_plan->steps_per_epoch != batches) {
    throw ConfigError("the learning-rate schedule was planned for " +
                      std::to_string(lr_plan->steps_per_epoch) +
                      " steps an epoch, training takes " + std::to_string(batches));
  }
  // A captured step replays the host's numbers of its capture: the rate (so
  // none with a schedule, and a new capture when ReduceLROnPlateau changes it
  // between epochs) and Adam's and Adamax's bias corrections (so none for
  // them: Optimizer::step_is_replayable).
  const bool graphable = device.is_cuda() && cfg.cuda_graphs && !augmenting && lr_plan == nullptr &&
                         optimizer.step_is_replayable() && GraphedStep::available() &&
                         n >= batch_size;
  std::unique_ptr<GraphedStep> graphed;
  double graphed_rate = 0;

  for (; state.epoch <= cfg.epochs; ++state.epoch) {
    const auto start = Clock::now();
    model->train();
    if (!state.order.defined()) {
      // CPU generator: the same order on every device.
      state.order = cfg.shuffle ? at::randperm(n, at::kLong) : at::arange(n, at::kLong);
    }
    const at::Tensor order = state.order.to(device);
    if (graphable && (!graphed || optimizer.learning_rate() != graphed_rate)) {
      graphed.reset();  // its graph's memory goes before the next capture
      graphed = std::make_unique<GraphedStep>(step, batch_size, device);
      graphed_rate = optimizer.learning_rate();
    }
    loss_sum.fill_(state.loss_sum);
    correct.fill_(state.correct);
    // This epoch's augmented batches, prepared ahead on CPU threads; its
    // destruction (end of epoch, stop, error) ends them.
    std::optional<AugmentPipeline> pipeline;
    if (augmenting) {
      pipeline.emplace(*cfg.augmenter, source, state.order, state.epoch, state.batch, batches,
                       batch_size, cfg.augment_threads, cfg.augment_depth);
    }
    for (int64_t b = state.batch; b < batches; ++b) {
      const int64_t first = b * batch_size;
      const int64_t len = std::min(batch_size, n - first);
      const at::Tensor idx = order.narrow(0, first, len);
      if (lr_plan != nullptr) {
        optimizer.set_learning_rate(scheduled_rate(*lr_plan, (state.epoch - 1) * batches + b));
      }
      if (pipeline) {
        step_on(idx, pipeline->next().to(device));
      } else if (graphed && len == batch_size) {
        if ((*graphed)(idx)) {
          optimizer.count_replayed_step();
        }
      } else {
        step(idx);
      }
      if (callbacks.on_batch && ((b + 1) % cfg.progress_every == 0 || b + 1 == batches)) {
        const double seen = static_cast<double>(first + len);
        callbacks.on_batch({state.epoch, cfg.epochs, b + 1, batches, loss_sum.item<double>() / seen,
                            static_cast<double>(correct.item<int64_t>()) / seen,
                            seconds_since(start)});
      }
      const bool stopping = callbacks.stop != nullptr && callbacks.stop->load();
      if (stopping && b + 1 < batches) {
        state.batch = b + 1;
        state.loss_sum = loss_sum.item<double>();
        state.correct = correct.item<int64_t>();
        if (callbacks.on_checkpoint) {
          callbacks.on_checkpoint(state);
        }
        return TrainOutcome::kStopped;
      }
    }
    EpochStats stats;
    stats.epoch = state.epoch;
    stats.loss = loss_sum.item<double>() / static_cast<double>(n);
    stats.accuracy = static_cast<double>(correct.item<int64_t>()) / static_cast<double>(n);
    stats.batches = batches - state.batch;
    stats.train_seconds = seconds_since(start);
    stats.images_per_second =
        static_cast<double>(n - state.batch * batch_size) / stats.train_seconds;
    const EvalResult v = evaluate(model, val, kEvalBatchSize, cfg.precision);
    if (lr_plan != nullptr) {
      optimizer.set_learning_rate(scheduled_rate(*lr_plan, state.epoch * batches));
    }
    stats.learning_rate = optimizer.learning_rate();
    stats.val_loss = v.loss;
    stats.val_accuracy = v.accuracy;
    stats.seconds = seconds_since(start);
    state.history.push_back(stats);
    state.order = at::Tensor();
    state.batch = 0;
    state.loss_sum = 0;
    state.correct = 0;
    if (callbacks.on_epoch) {
      callbacks.on_epoch(stats);
    }
    const bool stop_training = callbacks.stop_training && callbacks.stop_training(stats);
    const bool stopping = callbacks.stop != nullptr && callbacks.stop->load();
    if (callbacks.on_checkpoint) {
      TrainState next = state;
      ++next.epoch;
      callbacks.on_checkpoint(next);
    }
    if (stop_training && state.epoch < cfg.epochs) {
      ++state.epoch;
      return TrainOutcome::kStoppedEarly;
    }
    if (stopping && state.epoch < cfg.epochs) {
      ++state.epoch;
      return TrainOutcome::kStopped;
    }
  }
  return TrainOutcome::kFinished;
}

}  // namespace mnist
