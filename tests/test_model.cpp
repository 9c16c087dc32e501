// Model: shapes, parameter count, the TF.js summary and TF.js initialisers.
#include "mnist/model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include <ATen/ATen.h>

#include <torch/utils.h>
#include "mnist/error.hpp"
#include "mnist/optimizer.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

TEST(ModelTest, OutputIsNx10) {
  Model model(mnist_node_spec());
  EXPECT_EQ(model->forward(at::rand({3, 1, 28, 28})).sizes(), (at::IntArrayRef{3, 10}));
}

TEST(ModelTest, Has594922Parameters) {
  Model model(mnist_node_spec());
  EXPECT_EQ(count_params(model), 594922);
  EXPECT_EQ(model->spec().layers.size(), 11U);
  EXPECT_EQ(model->spec().layers[6]->output_shape, (std::vector<int64_t>{1024}));
}

TEST(ModelTest, SummaryIsWhatTfjsPrints) {
  std::ifstream in(std::string(MNIST_TEST_DATA_DIR) + "/tfjs_summary.txt");
  ASSERT_TRUE(in) << "missing fixture";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(summary_text(Model(mnist_node_spec())), expected.str());
}

TEST(ModelTest, WeightsInManifestOrderWithLibtorchShapes) {
  Model model(mnist_node_spec());
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
  Model model(mnist_node_spec());
  struct Case {
    at::Tensor w;
    double fan_in, fan_out;
  };
  const std::vector<Case> cases = {
      {model->weight("conv2d_Conv2D2/kernel"), 9 * 32, 9 * 32},
      {model->weight("conv2d_Conv2D4/kernel"), 9 * 64, 9 * 64},
      {model->weight("dense_Dense1/kernel"), 1024, 512},
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
  Model a(mnist_node_spec());
  torch::manual_seed(3);
  Model b(mnist_node_spec());
  EXPECT_TRUE(a->weight("dense_Dense1/kernel").equal(b->weight("dense_Dense1/kernel")));
}

TEST(ModelTest, DropoutOnlyWhileTraining) {
  Model model(mnist_node_spec());
  const at::Tensor x = at::rand({4, 1, 28, 28});
  model->eval();
  EXPECT_TRUE(model->forward(x).equal(model->forward(x)));
  model->train();
  EXPECT_FALSE(model->forward(x).equal(model->forward(x)));
}

TEST(ModelTest, TrainingDropoutKeepsOneMinusRateScaled) {
  // 0.25 and 0.5 take the byte-mask path, 0.3 libtorch's dropout.
  for (const double rate : {0.25, 0.5, 0.3}) {
    ModelSpec spec;
    spec.layers = {test::layer("Flatten", "f"), test::layer("Dropout", "d", {{"rate", rate}})};
    Model model(spec);
    const at::Tensor x = at::ones({2000, 1, 28, 28});
    const at::Tensor y = model->forward(x);
    const double zero_fraction = y.eq(0).to(at::kDouble).mean().item<double>();
    EXPECT_NEAR(zero_fraction, rate, 0.002) << rate;
    const at::Tensor kept = y.masked_select(y.ne(0));
    EXPECT_NEAR(kept.min().item<double>(), 1.0 / (1.0 - rate), 1e-6);
    EXPECT_NEAR(kept.max().item<double>(), 1.0 / (1.0 - rate), 1e-6);
    // Different masks on different calls, and none at all in evaluation.
    EXPECT_FALSE(model->forward(x).equal(y));
    model->eval();
    EXPECT_TRUE(model->forward(x).equal(x.flatten(1)));
  }
}

TEST(ModelTest, PredictProbaRowsSumToOne) {
  Model model(mnist_node_spec());
  const at::Tensor p = predict_proba(model, at::rand({5, 1, 28, 28}), /*batch_size=*/2);
  EXPECT_EQ(p.sizes(), (at::IntArrayRef{5, 10}));
  EXPECT_TRUE(p.sum(1).allclose(at::ones({5}), 1e-5, 1e-6));
  EXPECT_TRUE(model->is_training());  // restored
}

TEST(ModelTest, ForwardIsLogitsAndPredictIsSoftmax) {
  Model model(mnist_node_spec());
  model->eval();
  const at::Tensor x = at::rand({2, 1, 28, 28});
  EXPECT_TRUE(model->predict(x).allclose(at::softmax(model->forward(x), 1), 1e-6, 1e-7));
  EXPECT_TRUE(model->ends_in_softmax());
}

using test::layer;

TEST(ModelTest, SamePaddingStridesAndAveragePoolingFollowTf) {
  ModelSpec spec;
  spec.layers = {
      layer("Conv2D", "c",
            {{"filters", 4}, {"kernel_size", 3}, {"strides", 2}, {"padding", "same"}}),
      layer("AveragePooling2D", "p", {{"pool_size", 3}, {"strides", 3}, {"padding", "same"}}),
      layer("Flatten", "f"), layer("Dense", "d", {{"units", 10}, {"activation", "softmax"}})};
  Model model(spec);
  // TF: ceil(28 / 2) = 14, then ceil(14 / 3) = 5.
  EXPECT_EQ(model->spec().layers[0]->output_shape, (std::vector<int64_t>{14, 14, 4}));
  EXPECT_EQ(model->spec().layers[1]->output_shape, (std::vector<int64_t>{5, 5, 4}));
  EXPECT_EQ(model->forward(at::rand({2, 1, 28, 28})).sizes(), (at::IntArrayRef{2, 10}));
  // Average pooling with "same" averages only the cells inside the input.
  ModelSpec ones;
  ones.layers = {
      layer("AveragePooling2D", "p", {{"pool_size", 2}, {"strides", 2}, {"padding", "same"}}),
      layer("Flatten", "f")};
  Model pooling(ones);
  const at::Tensor out = pooling->forward(at::ones({1, 1, 28, 28}));
  EXPECT_TRUE(out.allclose(at::ones_like(out)));
}

TEST(ModelTest, RefusesShapesThatDoNotWorkOut) {
  ModelSpec conv_on_flat;
  conv_on_flat.layers = {layer("Flatten", "f"),
                         layer("Conv2D", "conv_x", {{"filters", 2}, {"kernel_size", 3}})};
  try {
    Model m(conv_on_flat);
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("conv_x (Conv2D): needs an image input [h,w,c], got"),
              std::string::npos)
        << e.what();
  }
  // Weights larger than a model may hold are refused before any is made.
  ModelSpec huge;
  huge.layers = {layer("Flatten", "f"), layer("Dense", "d", {{"units", 2000000000}})};
  try {
    Model m(huge);
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("layer d (Dense): the model's weights would hold more "
                                         "than 134217728 values (weight \"kernel\" of shape "
                                         "[2000000000,784]): too large to load here"),
              std::string::npos)
        << e.what();
  }
  ModelSpec too_small;
  too_small.layers = {layer("Conv2D", "c", {{"filters", 1}, {"kernel_size", 29}})};
  EXPECT_THROW(Model m(too_small), FormatError);
}

TEST(ModelTest, DilatedConvolutionIsOneWithItsKernelSpreadOut) {
  // dilation_rate [2,3] on a 3x2 kernel: taps 2 rows and 3 columns apart,
  // a 5x4 window. The same convolution with a 5x4 kernel that is zero
  // between the taps gives the same output, and the same gradient at the
  // taps: so training a dilated model (which TF.js's gradients refuse)
  // follows from the plain convolution's.
  nlohmann::ordered_json d = {{"filters", 3},
                              {"kernel_size", {3, 2}},
                              {"dilation_rate", {2, 3}},
                              {"padding", "same"},
                              {"activation", "tanh"}};
  nlohmann::ordered_json spread_out = d;
  spread_out["kernel_size"] = {5, 4};
  spread_out["dilation_rate"] = {1, 1};
  ModelSpec dilated_spec;
  dilated_spec.layers = {layer("Conv2D", "d", d)};
  ModelSpec spread_spec;
  spread_spec.layers = {layer("Conv2D", "d", spread_out)};
  Model dilated(dilated_spec);
  Model spread(spread_spec);
  EXPECT_EQ(dilated->spec().layers[0]->output_shape, (std::vector<int64_t>{28, 28, 3}));
  const at::Tensor k = dilated->weight("d/kernel");
  at::Tensor wide = spread->weight("d/kernel");
  {
    torch::NoGradGuard no_grad;
    wide.zero_();
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        wide.select(2, 2 * i).select(2, 3 * j).copy_(k.select(2, i).select(2, j));
      }
    }
    dilated->weight("d/bias").normal_();
    spread->weight("d/bias").copy_(dilated->weight("d/bias"));
  }
  const at::Tensor x = at::rand({2, 1, 28, 28});
  const at::Tensor a = dilated->forward(x);
  const at::Tensor b = spread->forward(x);
  ASSERT_EQ(a.sizes(), b.sizes());
  EXPECT_TRUE(a.allclose(b, 1e-5, 1e-6));
  const at::Tensor r = at::randn_like(a);
  (a * r).sum().backward();
  (b * r).sum().backward();
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t j = 0; j < 2; ++j) {
      EXPECT_TRUE(k.grad().select(2, i).select(2, j).allclose(
          wide.grad().select(2, 2 * i).select(2, 3 * j), 1e-4, 1e-5))
          << "tap " << i << "," << j;
    }
  }
  EXPECT_TRUE(dilated->weight("d/bias").grad().allclose(spread->weight("d/bias").grad(), 1e-4));
  // "valid": 28 - 5 + 1 rows, 28 - 4 + 1 columns.
  d["padding"] = "valid";
  dilated_spec.layers = {layer("Conv2D", "d", d)};
  EXPECT_EQ(Model(dilated_spec)->spec().layers[0]->output_shape, (std::vector<int64_t>{24, 25, 3}));
}

TEST(ModelTest, DepthwiseAndSeparableConvolutionsFollowTfjs) {
  // A 1x1 convolution makes three channels x * w_c; then a DepthwiseConv2D
  // (depth multiplier 2, 3x3, same, strides 2) or a SeparableConv2D (the
  // same depthwise step, dilation 2, valid, then 4 filters of 1x1).
  // tfjs-core: input channel c and multiplier m give channel c * 2 + m, from
  // the kernel's TF.js [kh,kw,c,m], which is [m,c,kh,kw] here.
  const LayerPtr widen =
      layer("Conv2D", "widen", {{"filters", 3}, {"kernel_size", 1}, {"use_bias", false}});
  const LayerPtr dw =
      layer("DepthwiseConv2D", "dw",
            {{"depth_multiplier", 2}, {"kernel_size", 3}, {"strides", 2}, {"padding", "same"}});
  const LayerPtr sep = layer("SeparableConv2D", "sep",
                             {{"filters", 4},
                              {"depth_multiplier", 2},
                              {"kernel_size", 3},
                              {"dilation_rate", 2},
                              {"activation", "relu"}});
  ModelSpec depthwise_spec;
  depthwise_spec.layers = {widen, dw};
  ModelSpec separable_spec;
  separable_spec.layers = {widen, sep};
  Model depthwise(depthwise_spec);
  Model separable(separable_spec);
  EXPECT_EQ(depthwise->spec().layers[1]->output_shape, (std::vector<int64_t>{14, 14, 6}));
  EXPECT_EQ(separable->spec().layers[1]->output_shape, (std::vector<int64_t>{24, 24, 4}));
  std::vector<std::string> names;
  for (const auto& [name, tensor] : separable->tfjs_weights()) {
    names.push_back(name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"widen/kernel", "sep/depthwise_kernel",
                                             "sep/pointwise_kernel", "sep/bias"}));
  EXPECT_EQ(count_params(depthwise), 3 + 9 * 3 * 2 + 6);
  EXPECT_EQ(count_params(separable), 3 + 9 * 3 * 2 + 6 * 4 + 4);
  EXPECT_EQ(depthwise->weight("dw/depthwise_kernel").sizes(), (at::IntArrayRef{2, 3, 3, 3}));
  EXPECT_EQ(separable->weight("sep/pointwise_kernel").sizes(), (at::IntArrayRef{4, 6, 1, 1}));
  {
    torch::NoGradGuard no_grad;
    depthwise->weight("dw/bias").normal_();
    separable->weight("sep/bias").normal_();
  }
  const at::Tensor x = at::rand({2, 1, 28, 28});
  torch::NoGradGuard no_grad;
  const auto channel = [&x](const Model& m, int64_t c) {
    return x * m->weight("widen/kernel")[c][0][0][0];
  };
  const at::Tensor k = depthwise->weight("dw/depthwise_kernel");
  const at::Tensor out = depthwise->forward(x);
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t m = 0; m < 2; ++m) {
      // Same padding of 28 by a 3x3 window at stride 2: 0 before, 1 after.
      const at::Tensor expected =
          at::conv2d(at::constant_pad_nd(channel(depthwise, c), {0, 1, 0, 1}),
                     k[m][c].view({1, 1, 3, 3}), {}, {2, 2}) +
          depthwise->weight("dw/bias")[c * 2 + m];
      EXPECT_TRUE(out.select(1, c * 2 + m).allclose(expected.select(1, 0), 1e-5, 1e-6))
          << "channel " << c * 2 + m;
    }
  }
  const at::Tensor sk = separable->weight("sep/depthwise_kernel");
  std::vector<at::Tensor> steps;
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t m = 0; m < 2; ++m) {
      steps.push_back(at::conv2d(channel(separable, c), sk[m][c].view({1, 1, 3, 3}), {}, {1, 1},
                                 at::IntArrayRef{0, 0}, {2, 2}));
    }
  }
  const at::Tensor pointwise = separable->weight("sep/pointwise_kernel").flatten(1);  // [4,6]
  const at::Tensor expected = (at::einsum("nchw,fc->nfhw", {at::cat(steps, 1), pointwise}) +
                               separable->weight("sep/bias").view({1, 4, 1, 1}))
                                  .relu();
  EXPECT_TRUE(separable->forward(x).allclose(expected, 1e-5, 1e-6));
}

TEST(ModelTest, RefusesDilationWithStridesAndNoDepth) {
  const auto error = [](const char* cls, const char* name, const nlohmann::ordered_json& c) {
    ModelSpec spec;
    spec.layers = {layer(cls, name, c)};
    try {
      Model m(spec);
    } catch (const FormatError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  nlohmann::ordered_json conv = {
      {"filters", 2}, {"kernel_size", 3}, {"dilation_rate", {2, 1}}, {"strides", {1, 2}}};
  EXPECT_EQ(error("Conv2D", "c", conv),
            "layer c (Conv2D): dilation_rate [2,1] with strides [1,2]: either the strides or the "
            "dilation rate must be 1 (as in TF.js)");
  conv["strides"] = {1, 1};
  conv["dilation_rate"] = {14, 14};  // a 29x29 window
  EXPECT_NE(error("Conv2D", "c", conv).find("is smaller than the window"), std::string::npos);
  EXPECT_EQ(error("DepthwiseConv2D", "dw", {{"kernel_size", 3}, {"depth_multiplier", 0}}),
            "layer dw (DepthwiseConv2D): depth_multiplier must be at least 1");
}

TEST(ModelTest, GlobalPoolingIsTheMeanOrMaxOverHeightAndWidth) {
  for (const std::string kind : {"GlobalAveragePooling2D", "GlobalMaxPooling2D"}) {
    ModelSpec spec;
    spec.layers = {layer("Conv2D", "c", {{"filters", 5}, {"kernel_size", 3}}),
                   layer(kind.c_str(), "g"), layer("Dense", "d", {{"units", 10}})};
    Model model(spec);
    EXPECT_EQ(model->spec().layers[1]->output_shape, (std::vector<int64_t>{5}));
    EXPECT_EQ(count_params(model), 5 * 9 + 5 + 5 * 10 + 10);
    ModelSpec alone;
    alone.layers = {layer(kind.c_str(), "g")};
    Model pooling(alone);
    const at::Tensor x = at::rand({2, 1, 28, 28});
    const at::Tensor expected = kind == "GlobalAveragePooling2D" ? x.mean({2, 3}) : x.amax({2, 3});
    EXPECT_TRUE(pooling->forward(x).allclose(expected, 1e-6, 0)) << kind;
  }
  // Global pooling needs an image.
  ModelSpec flat;
  flat.layers = {layer("Flatten", "f"), layer("GlobalMaxPooling2D", "g")};
  EXPECT_THROW(Model m(flat), FormatError);
}

TEST(ModelTest, GlobalMaxPoolingGivesEveryTiedMaximumTheWholeGradient) {
  // TF.js: dx = dy * equal(x, max(x)); three cells share the maximum 0.75.
  ModelSpec spec;
  spec.layers = {layer("GlobalMaxPooling2D", "g")};
  Model model(spec);
  at::Tensor x = at::zeros({1, 1, 28, 28});
  x[0][0][0][0] = 0.75;
  x[0][0][5][7] = 0.75;
  x[0][0][27][27] = 0.75;
  x[0][0][1][1] = 0.5;
  x.requires_grad_(true);
  const at::Tensor y = model->forward(x);
  EXPECT_EQ(y.item<float>(), 0.75f) << "the maximum exactly";
  (y * 2).sum().backward();
  const at::Tensor g = x.grad();
  EXPECT_EQ(g.sum().item<float>(), 6.0f);
  EXPECT_EQ(g[0][0][5][7].item<float>(), 2.0f);
  EXPECT_EQ(g[0][0][1][1].item<float>(), 0.0f);
}

TEST(ModelTest, FrozenLayersTakeNoGradientAndCountAsNonTrainable) {
  Model model(mnist_node_spec());
  EXPECT_EQ(count_trainable_params(model), 594922);
  EXPECT_EQ(freeze_up_to(model, "max_pooling2d_MaxPooling2D1"), 3U);
  EXPECT_EQ(model->layer_index("2"), 2U);
  EXPECT_FALSE(model->spec().layers[2]->trainable);
  EXPECT_TRUE(model->spec().layers[3]->trainable);
  EXPECT_EQ(count_trainable_params(model), 594922 - 320 - 9248);
  const std::string summary = summary_text(model);
  EXPECT_NE(summary.find("Total params: 594922\nTrainable params: 585354\nNon-trainable params: "
                         "9568\n"),
            std::string::npos)
      << summary;
  // A training step moves only the layers that train.
  const at::Tensor frozen = model->weight("conv2d_Conv2D2/kernel").clone();
  const at::Tensor free = model->weight("conv2d_Conv2D3/kernel").clone();
  Optimizer optimizer(model->parameters(), OptimizerKind::kRmsProp);
  const at::Tensor loss = model->forward(at::rand({4, 1, 28, 28})).logsumexp(1).sum();
  loss.backward();
  optimizer.step();
  EXPECT_TRUE(model->weight("conv2d_Conv2D2/kernel").equal(frozen));
  EXPECT_FALSE(model->weight("conv2d_Conv2D3/kernel").equal(free));
  for (const char* bad : {"nope", "11", "-1", "1e3", ""}) {
    try {
      model->layer_index(bad);
      FAIL() << bad;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(
                    "no layer \"" + std::string(bad) +
                    "\" in the model (its layers: 0 conv2d_Conv2D1, 1 conv2d_Conv2D2"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(ModelTest, BatchNormalizationUsesBatchStatisticsInTrainingAndMovesTheAverages) {
  ModelSpec spec;
  spec.layers = {layer("BatchNormalization", "bn", {{"momentum", 0.75}, {"epsilon", 0.01}})};
  Model model(spec);
  EXPECT_EQ(count_params(model), 4);
  EXPECT_EQ(count_trainable_params(model), 2) << "gamma and beta";
  const auto weights = model->tfjs_weights();
  ASSERT_EQ(weights.size(), 4U);
  EXPECT_EQ(weights[0].first, "bn/gamma");
  EXPECT_EQ(weights[3].first, "bn/moving_variance");
  {
    torch::NoGradGuard no_grad;
    model->weight("bn/gamma").fill_(2.0);
    model->weight("bn/beta").fill_(0.5);
  }
  const at::Tensor x = at::rand({6, 1, 28, 28});
  model->train();
  const at::Tensor y = model->forward(x);
  const double mean = x.mean().item<double>();
  const double variance = (x - mean).square().mean().item<double>();  // biased, as tf.moments
  EXPECT_TRUE(y.allclose((x - mean) / std::sqrt(variance + 0.01) * 2.0 + 0.5, 1e-4, 1e-5));
  // moving -= (moving - batch) * (1 - momentum), from 0 and 1.
  EXPECT_NEAR(model->weight("bn/moving_mean").item<double>(), 0.25 * mean, 1e-6);
  EXPECT_NEAR(model->weight("bn/moving_variance").item<double>(), 1.0 - 0.25 * (1.0 - variance),
              1e-6);
  EXPECT_FALSE(model->weight("bn/moving_mean").requires_grad());
  // Inference uses the moving statistics and moves nothing.
  model->eval();
  const double mm = model->weight("bn/moving_mean").item<double>();
  const double mv = model->weight("bn/moving_variance").item<double>();
  const at::Tensor z = model->forward(x);
  EXPECT_TRUE(z.allclose((x - mm) / std::sqrt(mv + 0.01) * 2.0 + 0.5, 1e-4, 1e-5));
  EXPECT_EQ(model->weight("bn/moving_mean").item<double>(), mm);
  // A fresh layer starts as TF.js's: gamma 1, beta 0, mean 0, variance 1.
  Model fresh(spec);
  EXPECT_EQ(fresh->weight("bn/gamma").item<float>(), 1.0f);
  EXPECT_EQ(fresh->weight("bn/moving_variance").item<float>(), 1.0f);
  EXPECT_EQ(fresh->weight("bn/moving_mean").item<float>(), 0.0f);
  // Only the channels axis.
  spec.layers = {layer("BatchNormalization", "bn", {{"axis", 2}})};
  EXPECT_THROW(Model bad(spec), FormatError);
}

// Found by fuzz_model (tests/fuzz/corpus/model/dup-layer-name): libtorch's
// register_parameter threw c10::Error for these, which the CLI reported as
// an internal error instead of a format error naming the layer.
TEST(ModelTest, RefusesDuplicateEmptyOrDottedLayerNames) {
  const auto conv_named = [](const std::string& name) {
    return layer("Conv2D", name.c_str(), {{"filters", 2}, {"kernel_size", 3}});
  };
  for (const auto& names :
       std::vector<std::vector<std::string>>{{"c1", "c1"}, {"", "c2"}, {"a.b", "c2"}}) {
    ModelSpec spec;
    spec.layers = {conv_named(names[0]), conv_named(names[1])};
    EXPECT_THROW(Model m(spec), FormatError) << names[0] << ", " << names[1];
  }
}

TEST(ModelTest, ReplaceHeadGivesTheLastDenseNewUnitsAndKeepsEveryOtherWeight) {
  torch::manual_seed(1);
  Model base(mnist_node_spec(true, 5));
  EXPECT_EQ(model_outputs(base), 5);
  EXPECT_EQ(count_params(base), 594922 - 5 * 513);
  freeze_up_to(base, "dense_Dense1");  // the head's replacement is trainable anyway
  base->set_trainable(10, false);
  const auto replaced = [&](uint64_t seed) {
    torch::manual_seed(seed);
    return replace_head(base, 3);
  };
  Model head = replaced(7);
  EXPECT_EQ(model_outputs(head), 3);
  EXPECT_TRUE(head->ends_in_softmax());
  EXPECT_EQ(head->spec().layers.back()->name, "dense_Dense2");
  EXPECT_TRUE(head->spec().layers.back()->trainable);
  EXPECT_EQ(count_trainable_params(head), 3 * 513);
  for (const auto& [name, tensor] : base->tfjs_weights()) {
    if (name.rfind("dense_Dense2/", 0) != 0) {
      EXPECT_TRUE(head->weight(name).equal(tensor)) << name;
    }
  }
  const at::Tensor kernel = head->weight("dense_Dense2/kernel");
  EXPECT_EQ(kernel.sizes(), (at::IntArrayRef{3, 512}));
  EXPECT_TRUE(head->weight("dense_Dense2/bias").equal(at::zeros({3})));
  // Glorot normal, truncated at 2 std: std sqrt(2 / (512 + 3)).
  EXPECT_LE(kernel.abs().max().item<double>(), 2.0 * std::sqrt(2.0 / 515.0) + 1e-6);
  EXPECT_TRUE(replaced(7)->weight("dense_Dense2/kernel").equal(kernel));  // from the seed
  EXPECT_FALSE(replaced(8)->weight("dense_Dense2/kernel").equal(kernel));
  EXPECT_EQ(predict_proba(head, at::rand({2, 1, 28, 28}), 2).sizes(), (at::IntArrayRef{2, 3}));

  // A model read from model.json keeps its config, with the new units.
  ModelSpec read = mnist_node_spec(false);
  read.layers.back()->config = {{"units", 10}, {"activation", "softmax"}, {"name", "dense_Dense2"}};
  Model from_file(read);
  EXPECT_EQ(replace_head(from_file, 4)->spec().layers.back()->config["units"], 4);
  // Only layers without weights may follow the head.
  ModelSpec tail = mnist_node_spec(false);
  tail.layers.push_back(layer("BatchNormalization", "bn"));
  EXPECT_THROW(replace_head(Model(tail), 4), ConfigError);
  ModelSpec no_dense;
  no_dense.layers = {layer("Flatten", "f")};
  EXPECT_THROW(replace_head(Model(no_dense), 4), ConfigError);
}

}  // namespace
}  // namespace mnist
