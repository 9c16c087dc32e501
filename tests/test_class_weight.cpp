// Class weights: balanced weights, the weights file's rules, the weighted
// loss and its gradient against hand computations, and train() with them.
#include "mnist/class_weight.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include "mnist/data.hpp"
#include "mnist/error.hpp"
#include "mnist/evaluate.hpp"
#include "mnist/train.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

using nlohmann::ordered_json;

const std::vector<std::string> kDigits = class_names(DatasetKind::kMnist);

TEST(ClassWeightTest, BalancedIsNOverClassesTimesCount) {
  // 6 labels: class 0 three times, class 1 once, class 2 twice.
  const at::Tensor labels = at::tensor({0, 2, 0, 1, 2, 0}, at::kLong);
  const ClassWeights w = balanced_class_weights(labels, 3);
  ASSERT_EQ(w.size(), 3U);
  EXPECT_DOUBLE_EQ(w[0], 6.0 / 9.0);
  EXPECT_DOUBLE_EQ(w[1], 2.0);
  EXPECT_DOUBLE_EQ(w[2], 1.0);
  // Balanced: every class then weighs n / classes in all.
  EXPECT_DOUBLE_EQ(3 * w[0], 2.0);
  EXPECT_DOUBLE_EQ(2 * w[2], 2.0);
  // Equal counts: all 1.
  EXPECT_EQ(balanced_class_weights(at::tensor({1, 0, 1, 0}, at::kLong), 2), (ClassWeights{1, 1}));
}

TEST(ClassWeightTest, BalancedRefusesAClassWithoutImagesAndBadLabels) {
  try {
    balanced_class_weights(at::tensor({0, 2, 0}, at::kLong), 3);
    FAIL() << "an absent class got a weight";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("class 1 has no image among the 3 training images"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(balanced_class_weights(at::tensor({0, 3}, at::kLong), 3), ConfigError);
  EXPECT_THROW(balanced_class_weights(at::tensor({0, -1}, at::kLong), 3), ConfigError);
  EXPECT_THROW(balanced_class_weights(at::tensor({0}, at::kLong), 0), ConfigError);
}

/// The message of the ConfigError `json` gets, "" if none.
std::string refusal(const std::string& json, const std::vector<std::string>& names) {
  try {
    class_weights_from_json(ordered_json::parse(json), names, "cw.json");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ClassWeightTest, FileKeysAreIndicesOrNames) {
  const std::vector<std::string> three = {"cat", "dog", "bird"};
  EXPECT_EQ(
      class_weights_from_json(ordered_json::parse(R"({"0": 1, "1": 5.5, "2": 0})"), three, "f"),
      (ClassWeights{1, 5.5, 0}));
  EXPECT_EQ(class_weights_from_json(ordered_json::parse(R"({"bird": 2, "cat": 0.5, "1": 1})"),
                                    three, "f"),
            (ClassWeights{0.5, 1, 2}));
  // MNIST: the names are the indices; --labels 3,7: "3" names output 0.
  EXPECT_EQ(class_weights_from_json(
                ordered_json::parse(R"({"0":1,"1":1,"2":1,"3":1,"4":1,"5":1,"6":1,"7":1,"8":1,
                                        "9":2})"),
                kDigits, "f")[9],
            2.0);
  EXPECT_EQ(class_weights_from_json(ordered_json::parse(R"({"7": 3, "3": 1})"), {"3", "7"}, "f"),
            (ClassWeights{1, 3}));
  // What class_weights_json writes (by index) reads back.
  const ClassWeights w = {0.25, 4.0};
  EXPECT_EQ(class_weights_from_json(class_weights_json(w), {"a", "b"}, "f"), w);
  EXPECT_EQ(class_weights_from_json(class_weights_json(w), {"0", "1"}, "f"), w);
  EXPECT_EQ(class_weights_json(w).dump(), R"({"0":0.25,"1":4.0})");
}

TEST(ClassWeightTest, FileRulesGiveClearErrors) {
  const std::vector<std::string> three = {"cat", "dog", "bird"};
  EXPECT_NE(refusal("[1, 2, 3]", three).find("cw.json: class weights are a JSON object"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"0": 1, "1": -2, "2": 1})", three)
                .find("cw.json: the weight of \"1\" must be a finite number >= 0, not -2"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"0": 1, "1": "2", "2": 1})", three).find("must be a finite number"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"0": 1, "1": null, "2": 1})", three).find("must be a finite number"),
            std::string::npos);
  // An index past the last class, a misspelt name, an index with a leading zero.
  for (const char* key : {"3", "Cat", "01", "-1", "1.0", ""}) {
    const std::string json = std::string(R"({"0": 1, "1": 1, "2": 1, ")") + key + R"(": 1})";
    EXPECT_NE(refusal(json, three)
                  .find(std::string("cw.json: \"") + key +
                        "\" is neither a class index nor a class name of this "
                        "model; its classes are 0 (cat), 1 (dog), 2 (bird)"),
              std::string::npos)
        << key;
  }
  EXPECT_NE(refusal(R"({"0": 1, "dog": 1, "2": 1, "1": 3})", three)
                .find("cw.json: class 1 (\"dog\") has two weights, as \"dog\" and \"1\""),
            std::string::npos);
  EXPECT_NE(refusal(R"({"0": 1, "2": 1})", three)
                .find("cw.json: no weight for class 1 (dog); every class of the model needs one"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"0": 0, "1": 0, "2": 0})", three).find("every class weight is 0"),
            std::string::npos);
  // --labels 1,0: "1" is output 1's index and output 0's name.
  EXPECT_NE(refusal(R"({"1": 2, "0": 1})", {"1", "0"})
                .find("cw.json: \"1\" is ambiguous: the index of class 1 (\"0\") and the name of "
                      "class 0"),
            std::string::npos);
  EXPECT_EQ(refusal(R"({"0": 1, "dog": 1, "2": 1})", three), "");
}

TEST(ClassWeightTest, ReadsAFileAndSaysWhatAMissingOneShouldBe) {
  const test::TempDir dir;
  const std::string path = dir.file("cw.json");
  std::ofstream(path) << R"({"0": 2, "1": 0.5})";
  EXPECT_EQ(read_class_weights(path, {"a", "b"}), (ClassWeights{2, 0.5}));
  try {
    read_class_weights(dir.file("balance"), {"a", "b"});
    FAIL() << "a missing file was read";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("balance") +
                                         ": no such file; class weights are \"balanced\" or a "
                                         "JSON file of {\"class index or name\": weight, ...}");
  }
  std::ofstream(path, std::ios::trunc) << R"({"0": 2, )";
  EXPECT_THROW(read_class_weights(path, {"a", "b"}), FormatError);
}

TEST(ClassWeightTest, WeightedLossAndGradientMatchAHandComputation) {
  const at::Tensor logits_value =
      at::tensor({1.0, 2.0, 0.5, -1.0, 0.0, 3.0, 0.2, 0.1, -0.4, 2.5, -2.0, 0.0}, at::kFloat)
          .view({4, 3});
  const at::Tensor labels = at::tensor({1, 2, 0, 0}, at::kLong);
  const std::vector<double> w = {0.5, 2.0, 1.5};
  const at::Tensor weights = at::tensor(w, at::kDouble).to(at::kFloat);
  const at::Tensor logits = logits_value.clone().requires_grad_(true);
  const at::Tensor loss = weighted_categorical_crossentropy(logits, labels, weights);
  loss.backward();

  // By hand, in double: mean over the 4 images of w[label] * -log softmax.
  const at::Tensor logits_double = logits_value.to(at::kDouble);
  const auto acc = logits_double.accessor<double, 2>();
  double expected = 0;
  std::vector<std::vector<double>> grad(4, std::vector<double>(3));
  for (int64_t i = 0; i < 4; ++i) {
    const int64_t y = labels[i].item<int64_t>();
    double z = 0;
    for (int64_t j = 0; j < 3; ++j) {
      z += std::exp(acc[i][j]);
    }
    expected += w[y] * -(acc[i][y] - std::log(z)) / 4;
    // d/dz_j of w_y / n * -log p_y = w_y / n * (p_j - [j == y])
    for (int64_t j = 0; j < 3; ++j) {
      grad[i][j] = w[y] / 4 * (std::exp(acc[i][j]) / z - (j == y ? 1.0 : 0.0));
    }
  }
  EXPECT_NEAR(loss.item<double>(), expected, 1e-6);
  const at::Tensor g = logits.grad().to(at::kDouble);
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t j = 0; j < 3; ++j) {
      EXPECT_NEAR(g[i][j].item<double>(), grad[i][j], 1e-7) << i << "," << j;
    }
  }
  // Weights of 1 are the unweighted loss, bit for bit.
  EXPECT_TRUE(weighted_categorical_crossentropy(logits_value, labels, at::ones({3}))
                  .equal(tfjs_categorical_crossentropy(logits_value, labels)));
  // The mean is over the batch size, not the weights' sum (TF.js's
  // computeWeightedLoss then mean): weights of 2 double the loss.
  EXPECT_FLOAT_EQ(
      weighted_categorical_crossentropy(logits_value, labels, at::full({3}, 2.0)).item<float>(),
      2 * tfjs_categorical_crossentropy(logits_value, labels).item<float>());
}

/// One SGD epoch of full batch on `data` from the same start; the weights after.
std::vector<at::Tensor> one_sgd_step(const Dataset& data, const ClassWeights& weights) {
  torch::manual_seed(3);
  Model model(mnist_node_spec(/*dropout=*/false));
  Optimizer optimizer(model->parameters(), OptimizerKind::kSgd);
  TrainConfig cfg;
  cfg.epochs = 1;
  cfg.batch_size = data.size();
  cfg.shuffle = false;
  cfg.class_weights = weights;
  TrainState state;
  train(model, optimizer, data, Dataset{}, cfg, state, {});
  std::vector<at::Tensor> after;
  for (const auto& p : model->parameters()) {
    after.push_back(p.detach().clone());
  }
  after.push_back(at::tensor(state.history.at(0).loss, at::kDouble));
  return after;
}

TEST(ClassWeightTest, TrainAppliesTheWeights) {
  torch::manual_seed(1);
  const Dataset data{at::rand({12, 1, 28, 28}), at::randint(0, 10, {12}, at::kLong)};
  std::vector<at::Tensor> start;
  {
    torch::manual_seed(3);
    Model model(mnist_node_spec(/*dropout=*/false));
    for (const auto& p : model->parameters()) {
      start.push_back(p.detach().clone());
    }
  }
  const auto plain = one_sgd_step(data, {});
  // Weights of 1: the same step, bit for bit.
  const auto ones = one_sgd_step(data, ClassWeights(10, 1.0));
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_TRUE(ones[i].equal(plain[i])) << i;
  }
  // Weights of 2: twice the loss and twice the SGD step.
  const auto twos = one_sgd_step(data, ClassWeights(10, 2.0));
  EXPECT_NEAR(twos.back().item<double>(), 2 * plain.back().item<double>(), 1e-5);
  for (size_t i = 0; i + 1 < plain.size(); ++i) {
    const at::Tensor step1 = start[i] - plain[i], step2 = start[i] - twos[i];
    // float32 rounding of the weights themselves aside (|w| ~ 0.1: 1e-8).
    EXPECT_LT((step2 - 2 * step1).abs().max().item<double>(),
              1e-3 * step2.abs().max().item<double>() + 2e-8)
        << i;
  }
  // A weight of 0 for every class of the batch but one: only its images teach.
  const int64_t first = data.labels[0].item<int64_t>();
  ClassWeights only(10, 0.0);
  only[static_cast<size_t>(first)] = 1.0;
  const at::Tensor mask = data.labels.eq(first);
  const Dataset subset{data.images.index({mask}), data.labels.index({mask})};
  const auto weighted = one_sgd_step(data, only);
  const auto alone = one_sgd_step(subset, {});
  const double share = static_cast<double>(subset.size()) / static_cast<double>(data.size());
  for (size_t i = 0; i + 1 < plain.size(); ++i) {
    // mean over 12 with weights 0/1 = share * the mean over the subset.
    const at::Tensor a = start[i] - weighted[i], b = (start[i] - alone[i]) * share;
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-3 * b.abs().max().item<double>() + 2e-8) << i;
  }
}

TEST(ClassWeightTest, TrainRefusesWeightsOfAnotherCount) {
  Model model(mnist_node_spec());
  Optimizer optimizer(model->parameters(), OptimizerKind::kSgd);
  TrainConfig cfg;
  cfg.epochs = 1;
  cfg.class_weights = {1.0, 2.0};
  TrainState state;
  const Dataset data{at::rand({4, 1, 28, 28}), at::randint(0, 10, {4}, at::kLong)};
  EXPECT_THROW(train(model, optimizer, data, Dataset{}, cfg, state, {}), ConfigError);
}

}  // namespace
}  // namespace mnist
