// Training loop: it learns, callbacks fire in order, bad settings are refused.
#include "mnist/train.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
#include "mnist/evaluate.hpp"

namespace mnist {
namespace {

/// Trains from scratch with a fresh optimizer; returns the history.
std::vector<EpochStats> fit(Model& model,
                            const Dataset& train_set,
                            const Dataset& val,
                            const TrainConfig& cfg,
                            const TrainCallbacks& cb = {}) {
  Optimizer optimizer(model->parameters(), OptimizerKind::kRmsProp);
  TrainState state;
  EXPECT_EQ(train(model, optimizer, train_set, val, cfg, state, cb), TrainOutcome::kFinished);
  return state.history;
}

/// 64 random images with fixed random labels: learnable only by memorising.
Dataset random_batch(int64_t n) {
  return {at::rand({n, 1, 28, 28}), at::randint(0, 10, {n}, at::kLong)};
}

/// `n` noisy images where class k is a bright horizontal band at rows
/// 2k+4..2k+5: easy to learn, so the loss must fall fast.
Dataset banded(int64_t n) {
  const at::Tensor labels = at::arange(n, at::kLong).remainder(10);
  at::Tensor images = at::rand({n, 1, 28, 28}) * 0.3;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = 2 * labels[i].item<int64_t>() + 4;
    images[i][0].narrow(0, row, 2).fill_(1.0);
  }
  return {images, labels};
}

TEST(TrainTest, LossFallsOnALearnableBatch) {
  torch::manual_seed(0);
  Model model(mnist_node_spec());
  const Dataset data = banded(64);
  const double before = evaluate(model, data, 64).loss;
  TrainConfig cfg;
  cfg.epochs = 15;
  cfg.batch_size = 32;
  const auto history = fit(model, data, Dataset{}, cfg, {});
  const EvalResult after = evaluate(model, data, 64);
  EXPECT_LT(after.loss, 0.3 * before);
  EXPECT_GT(after.accuracy, 0.9);
  EXPECT_LT(history.back().loss, history.front().loss);
}

TEST(TrainTest, CallbacksFireInOrderWithSaneFigures) {
  torch::manual_seed(1);
  Model model(mnist_node_spec());
  const Dataset train_set = random_batch(50);
  const Dataset val = random_batch(10);
  TrainConfig cfg;
  cfg.epochs = 2;
  cfg.batch_size = 16;  // 4 batches, the last one short
  cfg.progress_every = 2;
  std::vector<std::string> events;
  TrainCallbacks cb;
  cb.on_batch = [&](const BatchProgress& p) {
    events.push_back("b" + std::to_string(p.epoch) + "." + std::to_string(p.batch));
    EXPECT_EQ(p.batches, 4);
    EXPECT_GE(p.accuracy, 0.0);
    EXPECT_LE(p.accuracy, 1.0);
  };
  cb.on_epoch = [&](const EpochStats& s) {
    events.push_back("e" + std::to_string(s.epoch));
    EXPECT_EQ(s.batches, 4);
    EXPECT_GT(s.images_per_second, 0.0);
    EXPECT_GE(s.seconds, s.train_seconds);
    EXPECT_FALSE(std::isnan(s.val_loss));
  };
  const auto history = fit(model, train_set, val, cfg, cb);
  EXPECT_EQ(events, (std::vector<std::string>{"b1.2", "b1.4", "e1", "b2.2", "b2.4", "e2"}));
  ASSERT_EQ(history.size(), 2U);
}

TEST(TrainTest, NoValidationGivesNaNValidationFigures) {
  Model model(mnist_node_spec());
  TrainConfig cfg;
  cfg.epochs = 1;
  const auto history = fit(model, random_batch(8), Dataset{}, cfg, {});
  EXPECT_TRUE(std::isnan(history[0].val_loss));
}

TEST(TrainTest, SameSeedSameResultOnOneThread) {
  auto run = [] {
    torch::manual_seed(42);
    Model model(mnist_node_spec());
    TrainConfig cfg;
    cfg.epochs = 2;
    cfg.batch_size = 8;
    const Dataset d = random_batch(24);
    return fit(model, d, Dataset{}, cfg, {}).back().loss;
  };
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const double a = run();
  const double b = run();
  at::set_num_threads(threads);
  EXPECT_EQ(a, b);
}

TEST(TrainTest, BatchLargerThanTheDataIsTheWholeSet) {
  // Up to the largest int64 (whose arithmetic once overflowed to zero steps
  // and a loss of 0): one full-batch step an epoch, the same as batch = n.
  const auto run = [](int64_t batch_size) {
    torch::manual_seed(5);
    Model model(mnist_node_spec(/*with_dropout=*/false));
    TrainConfig cfg;
    cfg.epochs = 2;
    cfg.batch_size = batch_size;
    cfg.shuffle = false;
    return fit(model, random_batch(12), Dataset{}, cfg, {});
  };
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto whole = run(12);
  for (const int64_t batch : {int64_t{13}, int64_t{1} << 40, std::numeric_limits<int64_t>::max()}) {
    const auto h = run(batch);
    ASSERT_EQ(h.size(), 2U);
    EXPECT_GT(h[0].loss, 1.0) << batch;
    EXPECT_EQ(h[0].loss, whole[0].loss) << batch;
    EXPECT_EQ(h[1].loss, whole[1].loss) << batch;
  }
  at::set_num_threads(threads);
}

/// Without Dropout layers the seed only draws the shuffle: with shuffle off,
/// runs from the same weights under different seeds are identical; with it
/// on, they differ.
TEST(TrainTest, NoShuffleKeepsFileOrder) {
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  torch::manual_seed(3);
  const Dataset data = banded(48);
  Model start(mnist_node_spec(/*with_dropout=*/false));
  const auto run = [&](uint64_t seed, bool shuffle) {
    Model m(mnist_node_spec(false));
    for (const auto& [name, w] : start->tfjs_weights()) {
      m->weight(name).detach().copy_(w);
    }
    torch::manual_seed(seed);
    TrainConfig cfg;
    cfg.epochs = 2;
    cfg.batch_size = 16;
    cfg.shuffle = shuffle;
    fit(m, data, Dataset{}, cfg);
    return m->weight("dense_Dense2/kernel").clone();
  };
  EXPECT_TRUE(run(1, false).equal(run(2, false)));
  EXPECT_FALSE(run(1, true).equal(run(2, true)));
  at::set_num_threads(threads);
  for (const LayerPtr& l : start->spec().layers) {
    EXPECT_STRNE(l->class_name(), "Dropout");
  }
  EXPECT_EQ(start->spec().layers.size(), mnist_node_spec().layers.size() - 2);
  EXPECT_EQ(count_params(start), 594922);
}

TEST(TrainTest, StopTrainingEndsAfterTheEpochAndStillCheckpoints) {
  torch::manual_seed(4);
  Model model(mnist_node_spec());
  Optimizer optimizer(model->parameters(), OptimizerKind::kSgd, 0.5);
  TrainConfig cfg;
  cfg.epochs = 5;
  cfg.batch_size = 16;
  TrainState state;
  TrainCallbacks cb;
  int checkpoints = 0;
  cb.on_checkpoint = [&](const TrainState&) { ++checkpoints; };
  cb.stop_training = [](const EpochStats& s) { return s.epoch == 2; };
  EXPECT_EQ(train(model, optimizer, banded(32), Dataset{}, cfg, state, cb),
            TrainOutcome::kStoppedEarly);
  EXPECT_EQ(state.history.size(), 2U);
  EXPECT_EQ(checkpoints, 2);
  EXPECT_DOUBLE_EQ(state.history[1].learning_rate, 0.5);
}

TEST(TrainTest, RefusesEmptyTrainingSet) {
  Model model(mnist_node_spec());
  EXPECT_THROW(fit(model, Dataset{at::zeros({0, 1, 28, 28}), at::zeros({0}, at::kLong)}, Dataset{},
                   TrainConfig{}, {}),
               ConfigError);
}

TEST(TrainTest, ChannelsLastKeepsTheFunctionAndTheLayout) {
  Model model(mnist_node_spec());
  model->eval();
  const at::Tensor x = at::rand({2, 1, 28, 28});
  const at::Tensor before = model->forward(x);
  to_channels_last(model);
  EXPECT_TRUE(model->weight("conv2d_Conv2D1/kernel").is_contiguous(at::MemoryFormat::ChannelsLast));
  // The 1-input-channel kernel really has NHWC strides (docs/performance.md, trap 4).
  EXPECT_EQ(model->weight("conv2d_Conv2D1/kernel").stride(1), 1);
  EXPECT_TRUE(model->forward(x).allclose(before, 1e-5, 1e-6));
}

TEST(TrainTest, CudaTrainsAndAgreesWithCpu) {
  if (!torch::cuda::is_available()) {
    GTEST_SKIP() << "no CUDA device (CPU-only libtorch or no GPU)";
  }
  const Dataset data = banded(64);
  const c10::Device cuda(c10::kCUDA, 0);
  for (const bool graphs : {false, true}) {
    SCOPED_TRACE(graphs ? "CUDA graph steps" : "eager steps");
    torch::manual_seed(2);
    Model model(mnist_node_spec());
    model->eval();
    model->to(cuda);
    to_channels_last(model);
    {
      // No autograd graph may outlive this check: one made on the default
      // stream would make a CUDA graph capture fail (GraphedStep's contract).
      torch::NoGradGuard no_grad;
      const at::Tensor cuda_logits = model->forward(data.images.to(cuda)).cpu();
      model->to(c10::kCPU);
      const at::Tensor cpu_logits = model->forward(data.images);
      model->to(cuda);
      EXPECT_TRUE(cuda_logits.allclose(cpu_logits, 1e-3, 1e-3))
          << "max difference " << (cuda_logits - cpu_logits).abs().max().item<float>();
    }
    TrainConfig cfg;
    cfg.device = cuda;
    cfg.epochs = 15;
    cfg.batch_size = 32;
    cfg.cuda_graphs = graphs;
    const double before = evaluate(model, data, 64).loss;
    const auto history = fit(model, data, data, cfg, {});
    const double after = evaluate(model, data, 64).loss;
    EXPECT_LT(after, 0.3 * before) << "loss before " << before;
    EXPECT_TRUE(model->weight("conv2d_Conv2D1/kernel").is_cuda());
    EXPECT_GT(history.back().val_accuracy, 0.9);
  }
}

TEST(TrainTest, Bf16AutocastTrainsWithFloat32MasterWeights) {
  if (!cpu_has_bf16()) {
    GTEST_SKIP() << "this CPU has no bfloat16 instructions";
  }
  torch::manual_seed(0);
  Model model(mnist_node_spec());
  const Dataset data = banded(64);
  const double before = evaluate(model, data, 64).loss;
  TrainConfig cfg;
  cfg.epochs = 15;
  cfg.batch_size = 32;
  cfg.precision = Precision::kBFloat16;
  fit(model, data, Dataset{}, cfg);
  const EvalResult after = evaluate(model, data, 64, Precision::kBFloat16);
  EXPECT_LT(after.loss, 0.3 * before);
  for (const auto& p : model->parameters()) {
    EXPECT_EQ(p.scalar_type(), at::kFloat);
  }
  // bf16 evaluation stays close to fp32 evaluation of the same weights.
  EXPECT_NEAR(evaluate(model, data, 64).loss, after.loss, 0.05);
}

TEST(EvaluateTest, CrossEntropyClipsAsTfjs) {
  // Unclipped: libtorch's cross-entropy: the gradient bit for bit, the value
  // to rounding (another summation order).
  torch::manual_seed(1);
  const at::Tensor y = at::tensor(std::vector<int64_t>{3, 0, 9});
  at::Tensor a = at::randn({3, 10}).set_requires_grad(true);
  at::Tensor b = a.detach().clone().set_requires_grad(true);
  const at::Tensor ours = tfjs_categorical_crossentropy(a, y);
  const at::Tensor theirs = at::cross_entropy_loss(b, y);
  EXPECT_NEAR(ours.item<double>(), theirs.item<double>(), 1e-6 * theirs.item<double>());
  ours.backward();
  theirs.backward();
  EXPECT_TRUE(a.grad().equal(b.grad()));
  EXPECT_NEAR(tfjs_categorical_crossentropy(a, y, at::Reduction::Sum).item<double>(),
              3 * ours.item<double>(), 1e-5);
  // A label given p < 1e-7 costs -log(1e-7) and no gradient; so does one
  // given p > 1 - 1e-7.
  at::Tensor c = at::zeros({2, 10});
  c[0][0] = 40;  // label 1 gets about e^-40
  c[1][5] = 40;  // label 5 gets about 1 - 9 e^-40
  c.set_requires_grad(true);
  const at::Tensor loss =
      tfjs_categorical_crossentropy(c, at::tensor(std::vector<int64_t>{1, 5}), at::Reduction::Sum);
  EXPECT_NEAR(loss.item<double>(), -std::log(1e-7) - std::log1p(-1e-7), 1e-4);
  loss.backward();
  EXPECT_EQ(c.grad().abs().max().item<float>(), 0.0F);
}

TEST(EvaluateTest, EmptyDatasetGivesNaN) {
  Model model(mnist_node_spec());
  const EvalResult r = evaluate(model, Dataset{}, 16);
  EXPECT_EQ(r.count, 0);
  EXPECT_TRUE(std::isnan(r.accuracy));
}

TEST(EvaluateTest, MatchesAManualComputation) {
  torch::manual_seed(5);
  Model model(mnist_node_spec());
  const Dataset d = random_batch(37);
  const EvalResult r = evaluate(model, d, 10);
  model->eval();
  const at::Tensor logits = model->forward(d.images);
  EXPECT_NEAR(r.loss, at::cross_entropy_loss(logits, d.labels).item<double>(), 1e-5);
  EXPECT_NEAR(r.accuracy, logits.argmax(1).eq(d.labels).to(at::kDouble).mean().item<double>(),
              1e-12);
}

// ---- Per-class precision, recall and F1 ------------------------------------

/// scikit-learn's classification_report example: y_true 0,1,2,2,2 and
/// y_pred 0,0,2,2,1, worked by hand (its docstring prints the same, to two
/// decimals: 0.50 1.00 0.67 / 0.00 0.00 0.00 / 1.00 0.67 0.80; macro 0.50
/// 0.56 0.49; weighted 0.70 0.60 0.61).
TEST(ClassMetricsTest, HandWorkedExample) {
  const at::Tensor confusion = at::tensor({1, 0, 0, 1, 0, 0, 0, 1, 2}, at::kLong).view({3, 3});
  const ClassMetrics m = per_class_metrics(confusion);
  ASSERT_EQ(m.per_class.size(), 3U);
  // Class 0: tp 1, predicted 2 times, 1 image.
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 1.0);
  EXPECT_DOUBLE_EQ(m.per_class[0].f1, 2.0 / 3.0);
  EXPECT_EQ(m.per_class[0].support, 1);
  // Class 1: tp 0, predicted once, 1 image: every score defined, and 0.
  EXPECT_DOUBLE_EQ(m.per_class[1].precision, 0.0);
  EXPECT_DOUBLE_EQ(m.per_class[1].recall, 0.0);
  EXPECT_DOUBLE_EQ(m.per_class[1].f1, 0.0);
  EXPECT_FALSE(m.per_class[1].any_undefined());
  // Class 2: tp 2, predicted 2 times, 3 images.
  EXPECT_DOUBLE_EQ(m.per_class[2].precision, 1.0);
  EXPECT_DOUBLE_EQ(m.per_class[2].recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.per_class[2].f1, 0.8);
  EXPECT_EQ(m.per_class[2].support, 3);
  EXPECT_DOUBLE_EQ(m.macro_avg.precision, 0.5);
  EXPECT_DOUBLE_EQ(m.macro_avg.recall, (1.0 + 2.0 / 3.0) / 3.0);
  EXPECT_DOUBLE_EQ(m.macro_avg.f1, (2.0 / 3.0 + 0.8) / 3.0);
  EXPECT_EQ(m.macro_avg.support, 5);
  EXPECT_DOUBLE_EQ(m.weighted_avg.precision, 0.7);
  EXPECT_DOUBLE_EQ(m.weighted_avg.recall, 0.6);
  EXPECT_DOUBLE_EQ(m.weighted_avg.f1, (2.0 / 3.0 + 3 * 0.8) / 5.0);
  EXPECT_EQ(m.weighted_avg.support, 5);
  EXPECT_FALSE(m.macro_avg.any_undefined() || m.weighted_avg.any_undefined());
  // Recall is per_class_accuracy where a class has images.
  const at::Tensor acc = per_class_accuracy(confusion);
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_DOUBLE_EQ(acc[c].item<double>(), m.per_class[static_cast<size_t>(c)].recall);
  }
}

/// Zero denominators give kZeroDivision (0, scikit-learn's default),
/// flagged, and count as 0 in the averages as they do there.
TEST(ClassMetricsTest, ZeroDivisionCases) {
  EXPECT_EQ(kZeroDivision, 0.0);
  // Two images of class 0, both right; class 1 neither present nor
  // predicted; one image of class 2, predicted as 0.
  const at::Tensor confusion = at::tensor({2, 0, 0, 0, 0, 0, 1, 0, 0}, at::kLong).view({3, 3});
  const ClassMetrics m = per_class_metrics(confusion);
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 1.0);
  EXPECT_DOUBLE_EQ(m.per_class[0].f1, 0.8);
  EXPECT_FALSE(m.per_class[0].any_undefined());
  // Class 1: no image, never predicted: all three undefined.
  const ClassScores& absent = m.per_class[1];
  EXPECT_TRUE(absent.precision_undefined && absent.recall_undefined && absent.f1_undefined);
  EXPECT_EQ(absent.precision, kZeroDivision);
  EXPECT_EQ(absent.recall, kZeroDivision);
  EXPECT_EQ(absent.f1, kZeroDivision);
  EXPECT_EQ(absent.support, 0);
  // Class 2: never predicted: precision undefined; recall and F1 are 0.
  const ClassScores& missed = m.per_class[2];
  EXPECT_TRUE(missed.precision_undefined);
  EXPECT_FALSE(missed.recall_undefined || missed.f1_undefined);
  EXPECT_EQ(missed.precision, kZeroDivision);
  EXPECT_DOUBLE_EQ(missed.recall, 0.0);
  EXPECT_DOUBLE_EQ(missed.f1, 0.0);
  EXPECT_DOUBLE_EQ(m.macro_avg.precision, (2.0 / 3.0) / 3.0);
  EXPECT_DOUBLE_EQ(m.macro_avg.recall, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.macro_avg.f1, 0.8 / 3.0);
  EXPECT_DOUBLE_EQ(m.weighted_avg.precision, (2 * 2.0 / 3.0) / 3.0);
  EXPECT_DOUBLE_EQ(m.weighted_avg.recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.weighted_avg.f1, 1.6 / 3.0);
  EXPECT_EQ(m.weighted_avg.support, 3);

  // No images at all: the weighted average is undefined too.
  const ClassMetrics none = per_class_metrics(at::zeros({2, 2}, at::kLong));
  EXPECT_TRUE(none.weighted_avg.precision_undefined && none.weighted_avg.f1_undefined);
  EXPECT_EQ(none.weighted_avg.recall, kZeroDivision);
  EXPECT_TRUE(none.macro_avg.recall_undefined == false);  // the mean of two defined 0s
  EXPECT_EQ(none.macro_avg.recall, kZeroDivision);
}

TEST(ClassMetricsTest, RefusesWhatIsNotAConfusionMatrix) {
  EXPECT_THROW(per_class_metrics(at::zeros({2, 3}, at::kLong)), DataError);
  EXPECT_THROW(per_class_metrics(at::zeros({4}, at::kLong)), DataError);
  EXPECT_THROW(per_class_metrics(at::zeros({2, 2}, at::kFloat)), DataError);
  EXPECT_THROW(per_class_metrics(at::Tensor()), DataError);
  try {
    per_class_metrics(at::tensor({1, -1, 0, 2}, at::kLong).view({2, 2}));
    ADD_FAILURE() << "a negative count was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("expected counts >= 0, found -1"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace mnist
