// Model: shapes, parameter count, the TF.js summary and TF.js initialisers.
#include "mnist/model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/utils.h>

namespace mnist {
namespace {

TEST(ModelTest, OutputIsNx10) {
  ConvNet model;
  EXPECT_EQ(model->forward(at::rand({3, 1, 28, 28})).sizes(), (at::IntArrayRef{3, 10}));
}

TEST(ModelTest, Has594922Parameters) {
  ConvNet model;
  EXPECT_EQ(count_params(model), 594922);
  int64_t from_specs = 0;
  for (const auto& s : layer_specs()) {
    from_specs += s.params;
  }
  EXPECT_EQ(from_specs, 594922);
}

TEST(ModelTest, SummaryIsWhatTfjsPrints) {
  std::ifstream in(std::string(MNIST_TEST_DATA_DIR) + "/tfjs_summary.txt");
  ASSERT_TRUE(in) << "missing fixture";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(summary_text(), expected.str());
}

TEST(ModelTest, WeightsInManifestOrderWithLibtorchShapes) {
  ConvNet model;
  const auto weights = model->tfjs_weights();
  ASSERT_EQ(weights.size(), 12U);
  EXPECT_EQ(weights[0].first, "conv2d_Conv2D1/kernel");
  EXPECT_EQ(weights[0].second.sizes(), (at::IntArrayRef{32, 1, 3, 3}));
  EXPECT_EQ(weights[8].first, "dense_Dense1/kernel");
  EXPECT_EQ(weights[8].second.sizes(), (at::IntArrayRef{512, 1024}));
  EXPECT_EQ(weights[11].first, "dense_Dense2/bias");
}

TEST(ModelTest, GlorotNormalTruncatedAtTwoStd) {
  torch::manual_seed(7);
  ConvNet model;
  struct Case {
    at::Tensor w;
    double fan_in, fan_out;
  };
  const std::vector<Case> cases = {
      {model->conv2->weight, 9 * 32, 9 * 32},
      {model->conv4->weight, 9 * 64, 9 * 64},
      {model->dense1->weight, 1024, 512},
  };
  for (const auto& c : cases) {
    const double stddev = std::sqrt(2.0 / (c.fan_in + c.fan_out));
    // Nothing beyond 2 std (TF.js truncatedNormal redraws those)...
    EXPECT_LE(c.w.abs().max().item<double>(), 2.0 * stddev + 1e-7);
    // ...so the sample std is that of a normal truncated at 2 sigma:
    // stddev * 0.8796 (no correction factor, as TF.js).
    const double sample_std = c.w.std().item<double>();
    EXPECT_NEAR(sample_std / stddev, 0.8796, 0.02) << c.w.sizes();
    EXPECT_NEAR(c.w.mean().item<double>(), 0.0, 0.05 * stddev);
  }
  for (const auto& p : model->named_parameters()) {
    if (p.key().find("bias") != std::string::npos) {
      EXPECT_EQ(p.value().abs().sum().item<double>(), 0.0) << p.key();
    }
  }
}

TEST(ModelTest, SeedMakesInitialisationReproducible) {
  torch::manual_seed(3);
  ConvNet a;
  torch::manual_seed(3);
  ConvNet b;
  EXPECT_TRUE(a->dense1->weight.equal(b->dense1->weight));
}

TEST(ModelTest, DropoutOnlyWhileTraining) {
  ConvNet model;
  const at::Tensor x = at::rand({4, 1, 28, 28});
  model->eval();
  EXPECT_TRUE(model->forward(x).equal(model->forward(x)));
  model->train();
  EXPECT_FALSE(model->forward(x).equal(model->forward(x)));
}

TEST(ModelTest, PredictProbaRowsSumToOne) {
  ConvNet model;
  const at::Tensor p = predict_proba(model, at::rand({5, 1, 28, 28}), /*batch_size=*/2);
  EXPECT_EQ(p.sizes(), (at::IntArrayRef{5, 10}));
  EXPECT_TRUE(p.sum(1).allclose(at::ones({5}), 1e-5, 1e-6));
  EXPECT_TRUE(model->is_training());  // restored
}

}  // namespace
}  // namespace mnist
