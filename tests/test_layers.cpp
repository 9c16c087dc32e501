// The layer registry: its table, and each activation and activation, padding
// and reshaping layer against TF.js's formulas (tfjs-layers 4.22,
// activations.ts, advanced_activations.ts, padding.ts, convolutional.ts,
// core.ts). The real-TF.js checks of the same layers: tests/CMakeLists.txt,
// tfjs_model.activations and tfjs_model.reshaping.
#include "mnist/layers.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
#include "mnist/model.hpp"
#include "mnist/tfjs_io.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

using nlohmann::ordered_json;
using test::layer;

/// The error a layer of `cls` with `config` gives when made (and built on
/// [28,28,1]), or "".
std::string layer_error(const char* cls, const ordered_json& config) {
  try {
    ModelSpec spec;
    spec.layers = {layer(cls, "x", config)};
    Model m(spec);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

/// A model of one layer on `input`, its weights drawn as TF.js's.
Model one_layer(const char* cls, const ordered_json& config, Shape input = {28, 28, 1}) {
  ModelSpec spec;
  spec.input_shape = std::move(input);
  spec.layers = {layer(cls, "x", config)};
  return Model(spec);
}

TEST(LayerRegistryTest, HasEveryClassAndNamesThemForAnUnknownOne) {
  const std::vector<std::string> classes = layer_classes();
  for (const char* cls : {"Conv2D",
                          "DepthwiseConv2D",
                          "SeparableConv2D",
                          "MaxPooling2D",
                          "AveragePooling2D",
                          "GlobalAveragePooling2D",
                          "GlobalMaxPooling2D",
                          "BatchNormalization",
                          "Flatten",
                          "Dropout",
                          "Dense",
                          "Activation",
                          "ReLU",
                          "LeakyReLU",
                          "ELU",
                          "ThresholdedReLU",
                          "PReLU",
                          "Softmax",
                          "ZeroPadding2D",
                          "Cropping2D",
                          "UpSampling2D",
                          "Reshape",
                          "Permute",
                          "Rescaling",
                          "Conv2DTranspose",
                          "LayerNormalization",
                          "Add",
                          "Multiply",
                          "Average",
                          "Maximum",
                          "Minimum",
                          "Concatenate"}) {
    EXPECT_NE(std::find(classes.begin(), classes.end(), cls), classes.end()) << cls;
  }
  try {
    make_layer("Conv3D", {{"name", "c"}});
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("layer class Conv3D is not supported (supported: "
                                         "Conv2D, DepthwiseConv2D, SeparableConv2D"),
              std::string::npos)
        << e.what();
  }
}

TEST(ActivationTest, EveryNameTfjsWritesIsReadAndWrittenBack) {
  for (const char* name :
       {"linear", "relu", "softmax", "sigmoid", "tanh", "elu", "selu", "relu6", "hard_sigmoid",
        "softplus", "softsign", "swish", "mish", "gelu", "log_softmax"}) {
    const auto a = parse_activation(name);
    ASSERT_TRUE(a.has_value()) << name;
    EXPECT_STREQ(activation_name(*a), name);
  }
  EXPECT_EQ(parse_activation("hardSigmoid"), Activation::kHardSigmoid);
  EXPECT_FALSE(parse_activation("exponential").has_value());
  // TF.js 4.22 writes gelu_new but cannot read it back.
  EXPECT_FALSE(parse_activation("gelu_new").has_value());
  EXPECT_NE(layer_error("Activation", {{"activation", "exponential"}})
                .find("field \"activation\" is \"exponential\" (supported: linear, relu"),
            std::string::npos);
}

TEST(ActivationTest, FormulasAreTfjss) {
  const at::Tensor x = at::linspace(-30.0, 30.0, 241, at::kDouble).view({1, -1});
  const auto f = [&x](Activation a) { return activate(x.clone(), a); };
  const at::Tensor sig = 1.0 / (1.0 + (-x).exp());
  const at::Tensor softplus = (1.0 + x.exp()).log();
  const double scale = 1.0507009873554804934193349852946;
  const double alpha = 1.6732632423543772848170429916717;
  EXPECT_TRUE(f(Activation::kElu).allclose(at::where(x > 0, x, x.exp() - 1.0)));
  EXPECT_TRUE(
      f(Activation::kSelu).allclose(at::where(x > 0, scale * x, scale * alpha * (x.exp() - 1.0))));
  EXPECT_TRUE(f(Activation::kRelu6).allclose(x.clamp(0.0, 6.0)));
  EXPECT_TRUE(f(Activation::kHardSigmoid).allclose((0.2 * x + 0.5).clamp(0.0, 1.0)));
  EXPECT_TRUE(f(Activation::kSoftplus).allclose(softplus, 1e-6, 1e-6));
  EXPECT_TRUE(f(Activation::kSoftsign).allclose(x / (x.abs() + 1.0)));
  EXPECT_TRUE(f(Activation::kSwish).allclose(x * sig));
  EXPECT_TRUE(f(Activation::kMish).allclose(x * softplus.tanh(), 1e-6, 1e-6));
  EXPECT_TRUE(f(Activation::kGelu).allclose(0.5 * x * (1.0 + (x / std::sqrt(2.0)).erf())));
  EXPECT_TRUE(f(Activation::kLogSoftmax).allclose(x - x.logsumexp(1, true)));
  // Softplus's gradient stays finite far out (no overflowing branch).
  const at::Tensor big = at::full({1, 3}, 200.0f).requires_grad_(true);
  activate(big, Activation::kMish).sum().backward();
  EXPECT_TRUE(at::isfinite(big.grad()).all().item<bool>());
}

TEST(ActivationLayerTest, ReluLeakyEluThresholdedAndSoftmaxFollowTfjs) {
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::randn({2, 1, 28, 28}) * 8.0;
  EXPECT_TRUE(one_layer("ReLU", {{"max_value", 6}})->predict(x).equal(x.clamp(0.0, 6.0)));
  EXPECT_TRUE(one_layer("ReLU", {{"max_value", nullptr}})->predict(x).equal(x.relu()));
  EXPECT_TRUE(one_layer("LeakyReLU", ordered_json::object())
                  ->predict(x)
                  .allclose(at::where(x > 0, x, 0.3 * x)));
  // Keras 3 names alpha negative_slope; saved for TF.js as alpha.
  Model keras = one_layer("LeakyReLU", {{"negative_slope", 0.1}});
  EXPECT_TRUE(keras->predict(x).allclose(at::where(x > 0, x, 0.1 * x)));
  EXPECT_TRUE(one_layer("ELU", {{"alpha", 1.0}})->predict(x).allclose(at::elu(x)));
  EXPECT_TRUE(one_layer("ThresholdedReLU", {{"theta", 2.5}})
                  ->predict(x)
                  .equal(x * (x > 2.5).to(at::kFloat)));
  // One axis: the last (TF.js refuses others, its default 1 on an image too).
  EXPECT_TRUE(one_layer("Softmax", {{"axis", -1}})->predict(x).allclose(at::softmax(x, 1)));
  EXPECT_TRUE(one_layer("Softmax", {{"axis", 3}})->predict(x).allclose(at::softmax(x, 1)));
  EXPECT_NE(layer_error("Softmax", ordered_json::object())
                .find("axis 1 of its input [null,28,28,1] is not the last: TF.js computes a "
                      "softmax along the last axis only"),
            std::string::npos);
  EXPECT_TRUE(one_layer("Softmax", {{"axis", {1, 2}}})
                  ->predict(x)
                  .allclose((x - x.logsumexp({2, 3}, true)).exp()));
  // What TF.js would compute otherwise is refused.
  EXPECT_NE(layer_error("ReLU", {{"negative_slope", 0.1}})
                .find("field \"negative_slope\" is 0.1: TF.js's ReLU layer reads only max_value"),
            std::string::npos);
  EXPECT_NE(layer_error("ELU", {{"alpha", 0.5}}).find("supports only alpha 1"), std::string::npos);
  EXPECT_NE(layer_error("Softmax", {{"axis", 4}}).find("axis 4 is not an axis of its input"),
            std::string::npos);
}

TEST(ActivationLayerTest, PreluHasAnAlphaPerValueOrSharedAndTakesItsGradient) {
  Model per_value = one_layer("PReLU", ordered_json::object(), {4, 5, 3});
  EXPECT_EQ(per_value->weight("x/alpha").sizes(), (at::IntArrayRef{4, 5, 3})) << "TF.js's [h,w,c]";
  Model shared = one_layer("PReLU", {{"shared_axes", {1, 2}}}, {4, 5, 3});
  const at::Tensor alpha = shared->weight("x/alpha");
  EXPECT_EQ(alpha.sizes(), (at::IntArrayRef{1, 1, 3}));
  EXPECT_TRUE(alpha.equal(at::zeros({1, 1, 3}))) << "TF.js's default initializer: zeros";
  {
    torch::NoGradGuard no_grad;
    alpha.copy_(at::tensor({0.1f, 0.2f, 0.3f}).view({1, 1, 3}));
  }
  const at::Tensor x = at::randn({2, 3, 4, 5});
  const at::Tensor y = shared->forward(x);
  const at::Tensor a = at::tensor({0.1f, 0.2f, 0.3f}).view({1, 3, 1, 1});
  EXPECT_TRUE(y.allclose(at::where(x < 0, a * x, x)));
  y.sum().backward();
  EXPECT_TRUE(
      alpha.grad().view({3}).allclose(at::where(x < 0, x, at::zeros_like(x)).sum({0, 2, 3})));
  EXPECT_NE(layer_error("PReLU", {{"shared_axes", {4}}}).find("shared axis 4 is not an axis"),
            std::string::npos);
}

TEST(ReshapingLayerTest, PaddingCroppingAndUpsamplingShapesAndValues) {
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::rand({2, 3, 28, 28});
  Model pad = one_layer("ZeroPadding2D", {{"padding", {{1, 2}, {0, 3}}}}, {28, 28, 3});
  EXPECT_EQ(pad->spec().layers[0]->output_shape, (Shape{31, 31, 3}));
  const at::Tensor padded = pad->predict(x);
  EXPECT_TRUE(padded.narrow(2, 1, 28).narrow(3, 0, 28).equal(x));
  EXPECT_NEAR(padded.sum().item<double>(), x.sum().item<double>(), 1e-3) << "zeros around";
  EXPECT_EQ(one_layer("ZeroPadding2D", ordered_json::object())->spec().layers[0]->output_shape,
            (Shape{30, 30, 1}))
      << "TF.js's default: 1 on every side";
  Model crop = one_layer("Cropping2D", {{"cropping", {{1, 0}, {2, 1}}}}, {28, 28, 3});
  EXPECT_EQ(crop->spec().layers[0]->output_shape, (Shape{27, 25, 3}));
  EXPECT_TRUE(crop->predict(x).equal(x.narrow(2, 1, 27).narrow(3, 2, 25)));
  EXPECT_NE(layer_error("Cropping2D", {{"cropping", 14}}).find("leaves nothing"),
            std::string::npos);
  EXPECT_NE(layer_error("UpSampling2D", {{"size", 2}}).find("TF.js needs [rows, columns]"),
            std::string::npos);
  Model up = one_layer("UpSampling2D", {{"size", {2, 3}}}, {28, 28, 3});
  EXPECT_EQ(up->spec().layers[0]->output_shape, (Shape{56, 84, 3}));
  const at::Tensor near = up->predict(x);
  EXPECT_TRUE(near.index({at::indexing::Slice(), at::indexing::Slice(), 5, 7})
                  .equal(x.index({at::indexing::Slice(), at::indexing::Slice(), 2, 2})));
  // TF's legacy bilinear resize: output i reads input i / size.
  const at::Tensor row = at::tensor({0.0f, 4.0f, 8.0f}).view({1, 1, 1, 3});
  Model bilinear =
      one_layer("UpSampling2D", {{"size", {1, 2}}, {"interpolation", "bilinear"}}, {1, 3, 1});
  EXPECT_TRUE(bilinear->predict(row).equal(
      at::tensor({0.0f, 2.0f, 4.0f, 6.0f, 8.0f, 8.0f}).view({1, 1, 1, 6})));
}

// TF.js 4.22's UpSampling2D gradient (its CPU resizeNearestNeighbor
// gradient) is wrong for batches of more than one image; ours is the exact
// one: each input pixel gets the sum of the gradients of its copies.
TEST(ReshapingLayerTest, UpsamplingGradientIsExact) {
  Model up = one_layer("UpSampling2D", {{"size", {2, 3}}}, {4, 5, 2});
  const at::Tensor x = at::rand({3, 2, 4, 5}).requires_grad_(true);
  const at::Tensor w = at::rand({3, 2, 8, 15});
  (up->forward(x) * w).sum().backward();
  EXPECT_TRUE(x.grad().allclose(w.view({3, 2, 4, 2, 5, 3}).sum({3, 5}), 1e-6, 1e-6));
}

TEST(ReshapingLayerTest, ReshapeAndPermuteWorkInTfjsAxisOrder) {
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::rand({2, 3, 4, 5});  // NCHW of TF.js's [4,5,3]
  const at::Tensor nhwc = x.permute({0, 2, 3, 1});
  Model flat = one_layer("Reshape", {{"target_shape", {nullptr}}}, {4, 5, 3});  // TF.js's -1
  EXPECT_EQ(flat->spec().layers[0]->output_shape, (Shape{60}));
  EXPECT_TRUE(flat->predict(x).equal(nhwc.reshape({2, 60})));
  Model image = one_layer("Reshape", {{"target_shape", {2, 10, 3}}}, {4, 5, 3});
  EXPECT_TRUE(image->predict(x).permute({0, 2, 3, 1}).equal(nhwc.reshape({2, 2, 10, 3})));
  Model rows = one_layer("Reshape", {{"target_shape", {20, 3}}}, {4, 5, 3});
  EXPECT_TRUE(rows->predict(x).equal(nhwc.reshape({2, 20, 3})));
  EXPECT_NE(layer_error("Reshape", {{"target_shape", {5, 5}}}).find("does not hold the 784 values"),
            std::string::npos);
  Model permute = one_layer("Permute", {{"dims", {2, 1, 3}}}, {4, 5, 3});
  EXPECT_EQ(permute->spec().layers[0]->output_shape, (Shape{5, 4, 3}));
  EXPECT_TRUE(permute->predict(x).permute({0, 2, 3, 1}).equal(nhwc.permute({0, 2, 1, 3})));
  EXPECT_NE(layer_error("Permute", {{"dims", {1, 1, 3}}}).find("not an ordering"),
            std::string::npos);
  Model rescale = one_layer("Rescaling", {{"scale", 0.5}, {"offset", 0.1}});
  EXPECT_TRUE(rescale->predict(x.narrow(1, 0, 1)).allclose(x.narrow(1, 0, 1) * 0.5 + 0.1));
}

TEST(ConvolutionalLayerTest, Conv2DTransposeIsTheConvolutionsInputGradient) {
  // deconvLength: input * stride, plus max(kernel - stride, 0) for valid.
  for (const auto& [config, height, width] :
       std::vector<std::tuple<ordered_json, int64_t, int64_t>>{
           {{{"kernel_size", 3}, {"strides", 2}}, 57, 57},
           {{{"kernel_size", 3}, {"strides", 2}, {"padding", "same"}}, 56, 56},
           {{{"kernel_size", {1, 4}}, {"strides", {2, 3}}}, 56, 85}}) {
    ordered_json c = config;
    c["filters"] = 2;
    Model t = one_layer("Conv2DTranspose", c);
    EXPECT_EQ(t->spec().layers[0]->output_shape, (Shape{height, width, 2})) << c.dump();
    EXPECT_EQ(t->weight("x/kernel").size(0), 1) << "[in,filters,kh,kw]: TF.js's [kh,kw,filters,in]";
  }
  // <x, T(y)> = <C(x), y>: "valid" is the transpose of a valid convolution.
  torch::NoGradGuard no_grad;
  Model t = one_layer("Conv2DTranspose",
                      {{"filters", 2}, {"kernel_size", 3}, {"strides", 2}, {"use_bias", false}},
                      {6, 6, 3});
  const at::Tensor k = t->weight("x/kernel");  // [3,2,3,3]
  const at::Tensor y = at::rand({1, 3, 6, 6});
  const at::Tensor x = at::rand({1, 2, 13, 13});
  const at::Tensor cx = at::conv2d(x, k, {}, 2);  // [1,3,6,6]
  EXPECT_NEAR((t->predict(y) * x).sum().item<double>(), (cx * y).sum().item<double>(), 1e-4);
  EXPECT_NE(
      layer_error("Conv2DTranspose", {{"filters", 2}, {"kernel_size", 3}, {"dilation_rate", 2}})
          .find("passes no dilation"),
      std::string::npos);
}

TEST(NormalizationLayerTest, LayerNormalizationNormalisesEachExampleOverItsAxes) {
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::rand({2, 3, 4, 5});  // TF.js's [4,5,3]
  Model last = one_layer("LayerNormalization", ordered_json::object(), {4, 5, 3});
  EXPECT_EQ(last->weight("x/gamma").sizes(), (at::IntArrayRef{3}));
  const at::Tensor mean = x.mean(1, true);
  const at::Tensor var = (x - mean).square().mean(1, true);
  EXPECT_TRUE(last->predict(x).allclose((x - mean) / (var + 1e-3).sqrt(), 1e-5, 1e-5));
  Model all = one_layer("LayerNormalization", {{"axis", {1, 2, 3}}, {"epsilon", 0.01}}, {4, 5, 3});
  EXPECT_EQ(all->weight("x/beta").sizes(), (at::IntArrayRef{4, 5, 3})) << "TF.js's order";
  const at::Tensor m = x.mean({1, 2, 3}, true);
  const at::Tensor v = (x - m).square().mean({1, 2, 3}, true);
  EXPECT_TRUE(all->predict(x).allclose((x - m) / (v + 0.01).sqrt(), 1e-5, 1e-5));
  EXPECT_NE(layer_error("LayerNormalization", {{"axis", {1, 1}}}).find("not a distinct axis"),
            std::string::npos);
  EXPECT_NE(layer_error("LayerNormalization", {{"axis", 0}}).find("other than the batch"),
            std::string::npos);
}

TEST(InputShapeTest, FlatAndOtherImageInputsAreCheckedAgainstTheData) {
  ModelSpec dense;
  dense.input_shape = {784};
  dense.layers = {layer("Dense", "d", {{"units", 10}, {"activation", "softmax"}})};
  Model flat(dense);
  const at::Tensor x = at::rand({3, 1, 28, 28});
  // Flattened as TF.js users flatten MNIST (one channel: NHWC = NCHW).
  EXPECT_TRUE(flat->predict(x).allclose(
      at::softmax(at::linear(x.flatten(1), flat->weight("d/kernel"), flat->weight("d/bias")), 1)));
  EXPECT_EQ(input_mismatch(flat, {28, 28, 1}), "");
  ModelSpec cifar = mnist_node_spec();
  cifar.input_shape = {32, 32, 3};
  Model color(cifar);
  EXPECT_EQ(input_mismatch(color, {28, 28, 1}),
            "the model's input is [null,32,32,3], and the images are [null,28,28,1]: a model of "
            "these images takes [null,28,28,1] (or [null,784], flattened); images of other sizes "
            "cannot be given yet");
  EXPECT_THROW(predict_proba(color, x, 3), ConfigError);
  EXPECT_EQ(predict_proba(color, at::rand({2, 3, 32, 32}), 2).sizes(), (at::IntArrayRef{2, 10}));
}

// The merge layers (tfjs-layers 4.22 merge.ts). The expected values are real
// TF.js's: tests/node/merge_reference.js prints them (its seq() is seq() here).

/// An image of the model's layout (NCHW) from TF.js's (NHWC), and back; other
/// ranks are in TF.js's order in both.
at::Tensor from_tfjs(const at::Tensor& x) { return x.dim() == 4 ? x.permute({0, 3, 1, 2}) : x; }
at::Tensor to_tfjs(const at::Tensor& x) { return x.dim() == 4 ? x.permute({0, 2, 3, 1}) : x; }

/// merge_reference.js's seq(shape, k): value i (in TF.js's row-major order,
/// NHWC for an image) is ((i * k) % 13 - 6) / 4; in the model's layout (an
/// image NCHW, with channels-last strides as the model's images).
at::Tensor seq(const std::vector<int64_t>& tfjs_shape, int64_t k) {
  int64_t n = 1;
  for (const int64_t d : tfjs_shape) {
    n *= d;
  }
  const at::Tensor v = ((at::arange(n, at::kLong) * k).remainder(13) - 6).to(at::kFloat) / 4.0;
  return from_tfjs(v.view(tfjs_shape));
}

/// A merge layer made from its config, built for the shapes of `inputs` (the
/// model's layout), and its output for them.
struct Merged {
  Shape shape;
  at::Tensor y;
};
Merged merge(const char* cls, const ordered_json& config, const std::vector<at::Tensor>& inputs) {
  LayerPtr l = test::layer(cls, "m", config);
  std::vector<Shape> shapes;
  for (const at::Tensor& x : inputs) {
    const at::Tensor t = to_tfjs(x);
    shapes.emplace_back(t.sizes().begin() + 1, t.sizes().end());
  }
  std::vector<WeightSpec> weights;
  Merged m;
  m.shape = l->build(shapes, weights);
  EXPECT_TRUE(weights.empty()) << cls << ": merge layers have no weights";
  m.y = l->call(inputs, {}, CallContext{});
  return m;
}

/// What building merge layer `cls` for `shapes` throws, or "".
std::string merge_error(const char* cls,
                        const ordered_json& config,
                        const std::vector<Shape>& shapes) {
  try {
    LayerPtr l = test::layer(cls, "m", config);
    std::vector<WeightSpec> weights;
    l->build(shapes, weights);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

TEST(MergeLayerTest, ValuesAreRealTfjss) {
  torch::NoGradGuard no_grad;
  struct Case {
    const char* name;
    const char* cls;
    ordered_json config;
    std::vector<std::pair<std::vector<int64_t>, int64_t>> inputs;  // seq(shape, k)
    std::vector<int64_t> shape;                                    // TF.js's, with the batch
    std::vector<float> values;                                     // TF.js's order
  };
  const std::vector<Case> cases = {
      {"add_flat3",
       "Add",
       ordered_json::object(),
       {{{2, 3}, 5}, {{2, 3}, 3}, {{2, 3}, 7}},
       {2, 3},
       {-4.5f, -0.75f, -0.25f, 0.25f, 0.75f, 1.25f}},
      {"multiply_flat3",
       "Multiply",
       ordered_json::object(),
       {{{2, 3}, 5}, {{2, 3}, 3}, {{2, 3}, 7}},
       {2, 3},
       {-3.375f, 0.046875f, 0, -0.375f, -0.375f, -1.125f}},
      {"average_flat3",
       "Average",
       ordered_json::object(),
       {{{2, 3}, 5}, {{2, 3}, 3}, {{2, 3}, 7}},
       {2, 3},
       {-1.5f, -0.25f, -0.0833333358168602f, 0.0833333358168602f, 0.25f, 0.4166666865348816f}},
      {"maximum_flat3",
       "Maximum",
       ordered_json::object(),
       {{{2, 3}, 5}, {{2, 3}, 3}, {{2, 3}, 7}},
       {2, 3},
       {-1.5f, 0.25f, 1, 0.75f, 1.5f, 1.5f}},
      {"minimum_flat3",
       "Minimum",
       ordered_json::object(),
       {{{2, 3}, 5}, {{2, 3}, 3}, {{2, 3}, 7}},
       {2, 3},
       {-1.5f, -0.75f, -1.25f, -1, -1, -1}},
      {"add_image_channels",
       "Add",
       ordered_json::object(),
       {{{2, 2, 2, 3}, 5}, {{2, 3}, 3}},
       {2, 2, 2, 3},
       {-3,    -1, 1,      -2.5f, -0.5f, 1.5f,   -2,    0, -1.25f, -1.5f, 0.5f, -0.75f,
        1.25f, 0,  -1.25f, 1.75f, 0.5f,  -0.75f, 2.25f, 1, -0.25f, -0.5f, 1.5f, 0.25f}},
      {"multiply_channels_image",
       "Multiply",
       ordered_json::object(),
       {{{2, 3}, 3}, {{2, 2, 2, 3}, 5}},
       {2, 2, 2, 3},
       {2.25f, 0.1875f, 0,        1.5f,   -0.1875f, 0,        0.75f, -0.5625f,
        0,     0,       -0.9375f, 0,      0.375f,   -2.25f,   0.25f, 0.75f,
        -1.5f, -0.25f,  1.125f,   -0.75f, -0.75f,   -0.9375f, 0,     -1.25f}},
      {"maximum_image_rows",
       "Maximum",
       ordered_json::object(),
       {{{2, 2, 2, 3}, 5}, {{2, 2, 3}, 7}},
       {2, 2, 2, 3},
       {-1.5f, 0.25f, 1,      0.5f,  0.25f,  1.5f, -0.5f, 0.75f, -1.25f, 0.5f,  1.25f, 0.75f,
        0.5f,  1,     -0.25f, 1.25f, -0.25f, 1.5f, 1.5f,  1,     0.75f,  1.25f, 0,     1.5f}},
      {"average_ones",
       "Average",
       ordered_json::object(),
       {{{2, 3, 1}, 5}, {{2, 1, 4}, 3}},
       {2, 3, 4},
       {-1.5f,  -1.125f, -0.75f, -0.375f, -0.875f, -0.5f, -0.125f, 0.25f,
        -0.25f, 0.125f,  0.5f,   0.875f,  0.25f,   -1,    -0.625f, -0.25f,
        0.875f, -0.375f, 0,      0.375f,  1.5f,    0.25f, 0.625f,  1}},
      {"minimum_image_one_channel",
       "Minimum",
       ordered_json::object(),
       {{{2, 2, 2, 1}, 7}, {{2, 2, 2, 3}, 5}},
       {2, 2, 2, 3},
       {-1.5f, -1.5f, -1.5f, -1,    0.25f, 0.25f, -1.25f, -1.25f, -1.25f, 0,      0.5f, -0.75f,
        -1,    -1.5f, -1,    0.75f, -1,    0.25f, -0.75f, -0.75f, -0.75f, -1.25f, 0,    1}},
      {"concat_image_channels",
       "Concatenate",
       ordered_json::object(),
       {{{2, 2, 2, 3}, 5}, {{2, 2, 2, 1}, 3}},
       {2, 2, 2, 4},
       {-1.5f, -0.25f, 1,     -1.5f,  -1,    0.25f,  1.5f,   -0.75f, -0.5f, 0.75f, -1.25f,
        0,     0,      1.25f, -0.75f, 0.75f, 0.5f,   -1.5f,  -0.25f, 1.5f,  1,     -1,
        0.25f, -1,     1.5f,  -0.5f,  0.75f, -0.25f, -1.25f, 0,      1.25f, 0.5f}},
      {"concat_image_axis3",
       "Concatenate",
       ordered_json{{"axis", 3}},
       {{{2, 2, 2, 3}, 5}, {{2, 2, 2, 1}, 3}},
       {2, 2, 2, 4},
       {-1.5f, -0.25f, 1,     -1.5f,  -1,    0.25f,  1.5f,   -0.75f, -0.5f, 0.75f, -1.25f,
        0,     0,      1.25f, -0.75f, 0.75f, 0.5f,   -1.5f,  -0.25f, 1.5f,  1,     -1,
        0.25f, -1,     1.5f,  -0.5f,  0.75f, -0.25f, -1.25f, 0,      1.25f, 0.5f}},
      {"concat_image_rows",
       "Concatenate",
       ordered_json{{"axis", 1}},
       {{{2, 2, 2, 3}, 5}, {{2, 1, 2, 3}, 3}},
       {2, 3, 2, 3},
       {-1.5f, -0.25f, 1,     -1,     0.25f, 1.5f,  -0.5f,  0.75f, -1.25f, 0,      1.25f, -0.75f,
        -1.5f, -0.75f, 0,     0.75f,  1.5f,  -1,    0.5f,   -1.5f, -0.25f, 1,      -1,    0.25f,
        1.5f,  -0.5f,  0.75f, -1.25f, 0,     1.25f, -0.25f, 0.5f,  1.25f,  -1.25f, -0.5f, 0.25f}},
      {"concat_image_columns",
       "Concatenate",
       ordered_json{{"axis", 2}},
       {{{2, 2, 2, 3}, 5}, {{2, 2, 1, 3}, 3}},
       {2, 2, 3, 3},
       {-1.5f,  -0.25f, 1,      -1,    0.25f, 1.5f,  -1.5f,  -0.75f, 0,      -0.5f,  0.75f, -1.25f,
        0,      1.25f,  -0.75f, 0.75f, 1.5f,  -1,    0.5f,   -1.5f,  -0.25f, 1,      -1,    0.25f,
        -0.25f, 0.5f,   1.25f,  1.5f,  -0.5f, 0.75f, -1.25f, 0,      1.25f,  -1.25f, -0.5f, 0.25f}},
      {"concat_flat",
       "Concatenate",
       ordered_json{{"axis", 1}},
       {{{2, 3}, 5}, {{2, 2}, 3}, {{2, 1}, 7}},
       {2, 6},
       {-1.5f, -0.25f, 1, -1.5f, -0.75f, -1.5f, -1, 0.25f, 1.5f, 0, 0.75f, 0.25f}},
  };
  for (const Case& c : cases) {
    std::vector<at::Tensor> inputs;
    for (const auto& [shape, k] : c.inputs) {
      inputs.push_back(seq(shape, k));
    }
    const Merged m = merge(c.cls, c.config, inputs);
    EXPECT_EQ(m.shape, Shape(c.shape.begin() + 1, c.shape.end())) << c.name;
    const at::Tensor y = to_tfjs(m.y).contiguous();
    EXPECT_EQ(y.sizes(), at::IntArrayRef(c.shape)) << c.name;
    ASSERT_EQ(y.numel(), static_cast<int64_t>(c.values.size())) << c.name;
    // Bit for bit: Average too (TF.js multiplies the sum by float32(1/n)).
    EXPECT_TRUE(y.view(-1).equal(at::tensor(c.values))) << c.name << "\n" << y.view(-1);
  }
}

TEST(MergeLayerTest, FormulasOnImagesAndFlatInputs) {
  torch::NoGradGuard no_grad;
  const at::Tensor a = at::randn({2, 4, 5, 3}), b = at::randn({2, 4, 5, 3}),
                   c = at::randn({2, 4, 5, 3});  // NHWC
  const std::vector<at::Tensor> images = {from_tfjs(a), from_tfjs(b), from_tfjs(c)};
  const auto out = [&](const char* cls) {
    const Merged m = merge(cls, ordered_json::object(), images);
    EXPECT_EQ(m.shape, (Shape{4, 5, 3})) << cls;
    return to_tfjs(m.y);
  };
  EXPECT_TRUE(out("Add").equal(a + b + c));
  EXPECT_TRUE(out("Multiply").equal(a * b * c));
  EXPECT_TRUE(out("Average").equal((a + b + c) * (1.0f / 3.0f)));
  EXPECT_TRUE(out("Maximum").equal(at::maximum(at::maximum(a, b), c)));
  EXPECT_TRUE(out("Minimum").equal(at::minimum(at::minimum(a, b), c)));
  // An image and a [c] input: the vector is added to every pixel's channels.
  const at::Tensor v = at::randn({2, 3});
  const Merged per_channel = merge("Add", ordered_json::object(), {images[0], v});
  EXPECT_EQ(per_channel.shape, (Shape{4, 5, 3}));
  EXPECT_TRUE(to_tfjs(per_channel.y).equal(a + v.view({2, 1, 1, 3})));
  // A [w,c] input, the same for every row.
  const at::Tensor row = at::randn({2, 5, 3});
  EXPECT_TRUE(to_tfjs(merge("Multiply", ordered_json::object(), {row, images[1]}).y)
                  .equal(row.view({2, 1, 5, 3}) * b));
  // Flat inputs, one of size 1 (broadcast).
  const at::Tensor x = at::randn({3, 7}), one = at::randn({3, 1});
  const Merged flat = merge("Maximum", ordered_json::object(), {x, one});
  EXPECT_EQ(flat.shape, (Shape{7}));
  EXPECT_TRUE(flat.y.equal(at::maximum(x, one)));
  // Concatenate along the channels (-1, 3), rows (1) and columns (2).
  const at::Tensor d = at::randn({2, 4, 5, 2});
  for (const auto& [axis, tfjs_dim] : std::vector<std::pair<int, int>>{{-1, 3}, {3, 3}}) {
    const Merged m = merge("Concatenate", {{"axis", axis}}, {images[0], from_tfjs(d)});
    EXPECT_EQ(m.shape, (Shape{4, 5, 5})) << axis;
    EXPECT_TRUE(to_tfjs(m.y).equal(at::cat({a, d}, tfjs_dim))) << axis;
  }
  const at::Tensor rows = at::randn({2, 1, 5, 3}), columns = at::randn({2, 4, 2, 3});
  const Merged by_rows = merge("Concatenate", {{"axis", 1}}, {images[0], from_tfjs(rows)});
  EXPECT_EQ(by_rows.shape, (Shape{5, 5, 3}));
  EXPECT_TRUE(to_tfjs(by_rows.y).equal(at::cat({a, rows}, 1)));
  const Merged by_columns = merge("Concatenate", {{"axis", 2}}, {images[0], from_tfjs(columns)});
  EXPECT_EQ(by_columns.shape, (Shape{4, 7, 3}));
  EXPECT_TRUE(to_tfjs(by_columns.y).equal(at::cat({a, columns}, 2)));
  const Merged flat_cat = merge("Concatenate", ordered_json::object(), {x, one, x});
  EXPECT_EQ(flat_cat.shape, (Shape{15}));
  EXPECT_TRUE(flat_cat.y.equal(at::cat({x, one, x}, 1)));
  // [h,w] inputs (rank 3) keep TF.js's order: axis 1 is h.
  const at::Tensor hw = at::randn({2, 4, 5});
  EXPECT_TRUE(merge("Concatenate", {{"axis", 1}}, {hw, hw}).y.equal(at::cat({hw, hw}, 1)));
}

TEST(MergeLayerTest, MaximumAndMinimumFollowTfjsOnTiesAndNaN) {
  // tfjs-core's gradients: where the operands are equal, all of it to the
  // first (merge_reference.js: [[1,1,0],[0,0,1]] and [[1,0,1],[0,1,0]]).
  for (const auto& [cls, first, second] :
       std::vector<std::tuple<const char*, std::vector<float>, std::vector<float>>>{
           {"Maximum", {1, 1, 0}, {0, 0, 1}}, {"Minimum", {1, 0, 1}, {0, 1, 0}}}) {
    const at::Tensor a = at::tensor({1.0f, 2.0f, 3.0f}).view({1, 3}).requires_grad_(true);
    const at::Tensor b = at::tensor({1.0f, 0.0f, 4.0f}).view({1, 3}).requires_grad_(true);
    merge(cls, ordered_json::object(), {a, b}).y.sum().backward();
    EXPECT_TRUE(a.grad().view(-1).equal(at::tensor(first))) << cls << a.grad();
    EXPECT_TRUE(b.grad().view(-1).equal(at::tensor(second))) << cls << b.grad();
  }
  // Math.max and Math.min: NaN wins, from either side.
  torch::NoGradGuard no_grad;
  const float nan = std::nanf("");
  const at::Tensor p = at::tensor({nan, 1.0f, 2.0f}).view({1, 3});
  const at::Tensor q = at::tensor({0.0f, nan, 3.0f}).view({1, 3});
  for (const char* cls : {"Maximum", "Minimum"}) {
    const at::Tensor y = merge(cls, ordered_json::object(), {p, q}).y;
    EXPECT_TRUE(std::isnan(y[0][0].item<float>()) && std::isnan(y[0][1].item<float>())) << cls;
  }
  // Broadcast gradients are summed over the broadcast axes (TF.js 4.22's
  // Maximum and Minimum gradients fail there: "Error in gradient for op
  // Maximum"; Add's and Multiply's are these).
  const at::Tensor x = at::randn({2, 3, 4, 5}).requires_grad_(true);
  const at::Tensor s = at::randn({2, 1}).requires_grad_(true);
  {
    torch::AutoGradMode grad(true);
    merge("Multiply", ordered_json::object(), {x, s}).y.sum().backward();
  }
  EXPECT_TRUE(s.grad().allclose(x.sum({1, 2, 3}).view({2, 1}), 1e-5, 1e-5));
}

TEST(MergeLayerTest, ConfigsAreTfjssInItsKeyOrder) {
  // merge_reference.js: getConfig of each (the Model's save adds name and
  // trainable after the class's keys, as TF.js's Layer.getConfig).
  ModelSpec spec;
  spec.layers = {test::layer("Flatten", "f"),
                 test::layer("Add", "add"),
                 test::layer("Multiply", "multiply"),
                 test::layer("Average", "average"),
                 test::layer("Maximum", "maximum"),
                 test::layer("Minimum", "minimum"),
                 test::layer("Concatenate", "c"),
                 test::layer("Concatenate", "c", {{"axis", 2}, {"trainable", false}})};
  const ordered_json topology = model_topology(spec);
  const ordered_json& layers = topology["config"]["layers"];
  const std::vector<std::pair<const char*, const char*>> expected = {
      {"Add", R"({"name":"add","trainable":true})"},
      {"Multiply", R"({"name":"multiply","trainable":true})"},
      {"Average", R"({"name":"average","trainable":true})"},
      {"Maximum", R"({"name":"maximum","trainable":true})"},
      {"Minimum", R"({"name":"minimum","trainable":true})"},
      {"Concatenate", R"({"axis":-1,"name":"c","trainable":true})"},
      {"Concatenate", R"({"axis":2,"name":"c","trainable":false})"}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(layers[i + 1]["class_name"], expected[i].first);
    EXPECT_EQ(layers[i + 1]["config"].dump(), expected[i].second);
  }
}

TEST(MergeLayerTest, RefusesWhatTfjsRefusesOrComputesOtherwise) {
  const auto has = [](const std::string& error, const std::string& part) {
    return error.find(part) != std::string::npos;
  };
  // One input (TF.js: "should be called on an Array of at least 2 inputs"),
  // in a chain model too.
  for (const char* cls : {"Add", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}) {
    EXPECT_TRUE(has(merge_error(cls, ordered_json::object(), {{3}}),
                    "takes at least 2 inputs (a list of tensors, as TF.js's merge layers), got 1"))
        << cls;
    EXPECT_TRUE(has(layer_error(cls, ordered_json::object()), "takes at least 2 inputs")) << cls;
  }
  // TF.js 4.22 has no Subtract: "Unknown layer: Subtract".
  try {
    make_layer("Subtract", {{"name", "s"}});
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(),
                 "layer class Subtract is not supported: TF.js 4.22 has no Subtract layer "
                 "(tf.loadLayersModel fails on it: \"Unknown layer: Subtract\"), so a model of it "
                 "would not load in the browser");
  }
  // Shapes that do not broadcast (TF.js: [3,4] with [3], [4] with [5]).
  EXPECT_EQ(merge_error("Add", ordered_json::object(), {{3, 4}, {3}}),
            "the shapes of its inputs [null,3,4], [null,3] do not broadcast together (as in "
            "TF.js: aligned at their last axis, each pair of sizes must be equal or one of them "
            "1)");
  EXPECT_TRUE(has(merge_error("Maximum", ordered_json::object(), {{4}, {4}, {5}}),
                  "inputs [null,4], [null,4], [null,5] do not broadcast"));
  EXPECT_TRUE(has(merge_error("Multiply", ordered_json::object(), {{28, 28, 3}, {4}}),
                  "[null,28,28,3], [null,4] do not broadcast"));
  EXPECT_EQ(merge_error("Average", ordered_json::object(), {{3, 1}, {1, 4}}), "");
  EXPECT_TRUE(has(merge_error("Add", ordered_json::object(), {{65536, 1}, {1, 65536}}),
                  "broadcast to [null,65536,65536], more than 16777216 values per example"));
  // Concatenate: the shapes must agree off the axis, in one rank.
  EXPECT_EQ(merge_error("Concatenate", ordered_json::object(), {{2, 3}, {3, 3}}),
            "needs inputs of the same shape except along axis -1, got [null,2,3], [null,3,3]");
  EXPECT_EQ(merge_error("Concatenate", {{"axis", 1}}, {{2, 3}, {3, 3}}), "");
  EXPECT_EQ(merge_error("Concatenate", ordered_json::object(), {{2, 3}, {3}}),
            "needs inputs of one rank, got [null,2,3], [null,3]");
  EXPECT_EQ(merge_error("Concatenate", {{"axis", 3}}, {{2, 3}, {2, 3}}),
            "axis 3 is not an axis of its inputs [null,2,3], [null,2,3] (1 to 2, or -1)");
  EXPECT_TRUE(has(merge_error("Concatenate", ordered_json::object(), {{40000}, {30000}}),
                  "into [null,70000], larger than 65536 on a side"));
  // Axes TF.js computes otherwise than the output shape it declares
  // (merge_reference.js's quirks): the batch axis, and negative axes but -1.
  EXPECT_TRUE(has(merge_error("Concatenate", {{"axis", 0}}, {{2, 3}, {2, 3}}),
                  "field \"axis\" is 0, the batch axis"));
  EXPECT_TRUE(has(merge_error("Concatenate", {{"axis", -2}}, {{2, 3}, {2, 3}}),
                  "field \"axis\" is -2: TF.js 4.22 computes the output shape along that axis "
                  "but concatenates along the last axis for every negative axis"));
  EXPECT_TRUE(has(merge_error("Concatenate", {{"axis", 1.5}}, {{2, 3}, {2, 3}}),
                  "field \"axis\" must be an integer, found 1.5"));
  EXPECT_TRUE(has(merge_error("Concatenate", {{"axis", uint64_t{1} << 63}}, {{2, 3}, {2, 3}}),
                  "is not an axis of its inputs"));
}

// Along "the last axis" as real TF.js computes it for a rank-3 tensor (a
// Reshape's [rows, features], kept in TF.js's order inside the model) and an
// image's channels (dim 1 of NCHW): tests/node/axis_reference.js prints the
// values below, on seq([2,2,3], 5) and seq([2,2,2,3], 5).

/// Layer `cls` built for the shape of `x` (the model's layout) and given
/// `weights` (the model's layouts), and its output for `x`.
at::Tensor apply_layer(const char* cls,
                       const ordered_json& config,
                       const at::Tensor& x,
                       const std::vector<at::Tensor>& weights,
                       bool training = false) {
  LayerPtr l = test::layer(cls, "a", config);
  const at::Tensor t = to_tfjs(x);
  std::vector<WeightSpec> specs;
  l->build({Shape(t.sizes().begin() + 1, t.sizes().end())}, specs);
  EXPECT_EQ(specs.size(), weights.size()) << cls;
  for (size_t i = 0; i < specs.size() && i < weights.size(); ++i) {
    EXPECT_EQ(Shape(weights[i].sizes().begin(), weights[i].sizes().end()), specs[i].shape)
        << cls << " " << specs[i].name;
  }
  CallContext context;
  context.training = training;
  return l->call({x}, weights, context);
}

/// TF.js's output (its shape with the batch, its values in its order) in the
/// model's layout.
at::Tensor tfjs_values(const std::vector<int64_t>& shape, const std::vector<float>& values) {
  return from_tfjs(at::tensor(at::ArrayRef<float>(values)).view(shape));
}

void expect_tfjs(const at::Tensor& y,
                 const std::vector<int64_t>& shape,
                 const std::vector<float>& values,
                 const char* what) {
  ASSERT_EQ(y.sizes(), from_tfjs(at::zeros(shape)).sizes()) << what;
  EXPECT_TRUE(y.allclose(tfjs_values(shape, values), 1e-5, 1e-6))
      << what << ": " << to_tfjs(y).reshape({-1});
}

TEST(AxisRuleTest, SoftmaxesOfARank3TensorAreAlongItsLastAxis) {
  torch::NoGradGuard no_grad;
  const at::Tensor rows = seq({2, 2, 3}, 5);
  const std::vector<float> softmax = {
      0.05997779592871666f, 0.2093430906534195f,  0.7306791543960571f,  0.05997779592871666f,
      0.2093430906534195f,  0.7306791543960571f,  0.20150282979011536f, 0.7033140063285828f,
      0.09518319368362427f, 0.20150282979011536f, 0.7033140063285828f,  0.09518319368362427f};
  expect_tfjs(apply_layer("Activation", {{"activation", "softmax"}}, rows, {}), {2, 2, 3}, softmax,
              "Activation softmax");
  expect_tfjs(apply_layer("Softmax", {{"axis", -1}}, rows, {}), {2, 2, 3}, softmax,
              "Softmax layer");
  expect_tfjs(
      apply_layer("Activation", {{"activation", "log_softmax"}}, rows, {}), {2, 2, 3},
      {-2.8137807846069336f, -1.5637807846069336f, -0.31378084421157837f, -2.8137807846069336f,
       -1.5637807846069336f, -0.31378084421157837f, -1.6019518375396729f, -0.35195186734199524f,
       -2.351951837539673f, -1.6019518375396729f, -0.35195186734199524f, -2.351951837539673f},
      "Activation log_softmax");
  // An image's and a flat tensor's stay along the channels (dim 1).
  const at::Tensor image = seq({2, 2, 2, 3}, 5);
  EXPECT_TRUE(activate(image.clone(), Activation::kSoftmax).equal(at::softmax(image, 1)));
  const at::Tensor flat = seq({2, 3}, 5);
  EXPECT_TRUE(activate(flat.clone(), Activation::kLogSoftmax).equal(at::log_softmax(flat, 1)));
}

TEST(AxisRuleTest, DenseAppliesToTheLastAxisOfAnyRank) {
  torch::NoGradGuard no_grad;
  // TF.js's kernel [in, units] = [3, 2]; the model keeps it [units, in].
  const at::Tensor kernel = at::tensor({0.5f, -1.0f, 0.25f, 0.75f, -0.5f, 1.5f}).view({3, 2}).t();
  const at::Tensor bias = at::tensor({0.125f, -0.25f});
  {
    LayerPtr l = test::layer("Dense", "d", {{"units", 2}});
    std::vector<WeightSpec> specs;
    EXPECT_EQ(l->build({{2, 3}}, specs), (Shape{2, 2}));
    EXPECT_EQ(l->build({{4, 5, 3}}, specs), (Shape{4, 5, 2})) << "an image's channels";
  }
  expect_tfjs(
      apply_layer("Dense", {{"units", 2}, {"activation", "softmax"}}, seq({2, 2, 3}, 5),
                  {kernel, bias}),
      {2, 2, 2},
      {0.022977370768785477f, 0.977022647857666f, 0.01406362745910883f, 0.9859364032745361f,
       0.8519527316093445f, 0.14804719388484955f, 0.7772998809814453f, 0.22270014882087708f},
      "Dense softmax on [2,3]");
  const at::Tensor y = apply_layer("Dense", {{"units", 2}}, seq({2, 2, 2, 3}, 5), {kernel, bias});
  expect_tfjs(y, {2, 2, 2, 2},
              {-1.1875f, 2.5625f, -1.0625f, 3.1875f, 0.6875f, -1.0625f, 0.8125f, -0.4375f, 0.125f,
               -2.25f, 0.25f, -1.625f, 0.375f, -1.0f, -1.125f, 2.875f},
              "Dense on an image");
  EXPECT_TRUE(y.is_contiguous(at::MemoryFormat::ChannelsLast)) << "the model's image layout";
  // Units per pixel are bounded as a model's input: refused before anything
  // is allocated.
  EXPECT_NE(merge_error("Dense", {{"units", 100000}}, {{64, 64, 3}})
                .find("its output [null,64,64,100000] would hold more than 16777216 values per "
                      "example"),
            std::string::npos);
}

TEST(AxisRuleTest, BatchNormalizationOfARank3TensorIsAlongItsLastAxis) {
  const std::vector<float> gamma = {0.5f, 1.0f, 1.5f};
  const std::vector<float> beta = {0.1f, -0.2f, 0.3f};
  const auto stats = [&] {
    return std::vector<at::Tensor>{at::tensor(gamma), at::tensor(beta),
                                   at::tensor({0.25f, -0.5f, 0.0f}),
                                   at::tensor({1.0f, 2.0f, 0.5f})};
  };
  const at::Tensor rows = seq({2, 2, 3}, 5);
  {
    torch::NoGradGuard no_grad;
    expect_tfjs(
        apply_layer("BatchNormalization", ordered_json::object(), rows, stats()), {2, 2, 3},
        {-0.7745628356933594f, -0.023267485201358795f, 2.4192023277282715f, -0.5246877074241638f,
         0.3301975429058075f, 3.4788033962249756f, -0.27481263875961304f, 0.6836625933647156f,
         -2.3490028381347656f, -0.024937545880675316f, 1.0371276140213013f, -1.289401650428772f},
        "inference");
  }
  // Training: the batch's statistics over the examples and the rows, and the
  // moving ones moved towards them by (1 - momentum).
  const std::vector<at::Tensor> w = stats();
  expect_tfjs(apply_layer("BatchNormalization", {{"momentum", 0.75}, {"axis", 2}}, rows, w,
                          /*training=*/true),
              {2, 2, 3},
              {-0.569749653339386f, -1.539499282836914f, 1.438456416130066f, -0.12324988096952438f,
               -0.646499752998352f, 2.089002847671509f, 0.323249876499176f, 0.24649976193904877f,
               -1.4890029430389404f, 0.769749641418457f, 1.139499306678772f, -0.838456392288208f},
              "training");
  EXPECT_TRUE(w[2].allclose(at::tensor({0.0f, -0.25f, 0.03125f}), 1e-6, 1e-7)) << w[2];
  EXPECT_TRUE(w[3].allclose(at::tensor({0.828125f, 1.578125f, 0.70703125f}), 1e-6, 1e-7)) << w[3];
  // Another axis than the last is refused by name, not computed otherwise.
  EXPECT_NE(merge_error("BatchNormalization", {{"axis", 1}}, {{2, 3}})
                .find("axis 1 is not the last axis of its input [null,2,3] (only the last axis, "
                      "-1, is supported)"),
            std::string::npos);
  EXPECT_NE(merge_error("BatchNormalization", {{"axis", -2}}, {{2, 3}})
                .find("field \"axis\" is -2 (only the last axis, -1, is supported)"),
            std::string::npos);
}

// BatchNormalization with no gradient wanted (a frozen layer, inference)
// takes one fused pass (statistics summed in double, as TF.js's CPU backend
// sums); with one wanted, the tensor operations autograd differentiates. Both
// compute what the layer computes in float64: here on a channels-last batch
// whose channels sit far from 0 (where a one-pass variance without a shift
// would lose its digits, and float32's mean loses some), a contiguous NCHW
// one (tensor operations either way) and a rank-2 one, with and without
// gamma and beta.
TEST(AxisRuleTest, FusedBatchNormalizationEqualsTheTensorOperations) {
  at::manual_seed(3);
  const at::Tensor offset = at::tensor({0.0f, 1000.0f, -50.0f, 3.0f, 0.5f}).view({1, 5, 1, 1});
  const at::Tensor image = (at::randn({4, 5, 6, 7}) * 0.1 + offset);
  const std::vector<at::Tensor> inputs = {image.contiguous(at::MemoryFormat::ChannelsLast), image,
                                          at::randn({9, 5}) * 3.0 + 7.0};
  for (const bool training : {true, false}) {
    for (const ordered_json& config :
         {ordered_json{{"momentum", 0.75}}, ordered_json{{"center", false}, {"scale", false}}}) {
      for (const at::Tensor& x : inputs) {
        const bool affine = config.contains("center") ? false : true;
        const auto stats = [&](at::ScalarType type) {
          std::vector<at::Tensor> w;
          if (affine) {
            w = {at::linspace(0.5, 1.5, 5), at::linspace(-0.2, 0.3, 5)};
          }
          w.push_back(at::linspace(-1.0, 1.0, 5));
          w.push_back(at::linspace(0.5, 2.0, 5));
          for (at::Tensor& t : w) {
            t = t.to(type);
          }
          return w;
        };
        const std::vector<at::Tensor> fused_w = stats(at::kFloat);
        const std::vector<at::Tensor> ops_w = stats(at::kFloat);
        const std::vector<at::Tensor> ref_w = stats(at::kDouble);
        at::Tensor fused;
        at::Tensor ref;
        {
          torch::NoGradGuard no_grad;
          fused = apply_layer("BatchNormalization", config, x, fused_w, training);
          ref = apply_layer("BatchNormalization", config, x.to(at::kDouble), ref_w, training)
                    .to(at::kFloat);
        }
        const at::Tensor wants_grad = x.detach().clone().requires_grad_(true);
        const at::Tensor ops =
            apply_layer("BatchNormalization", config, wants_grad, ops_w, training);
        ASSERT_TRUE(ops.requires_grad()) << "the tensor operations, with their gradient";
        const std::string what = std::string(training ? "training" : "inference") + " " +
                                 config.dump() + " " + std::to_string(x.dim()) + "-D" +
                                 (x.is_contiguous() ? " contiguous" : " channels-last");
        EXPECT_EQ(fused.sizes(), x.sizes()) << what;
        EXPECT_EQ(fused.is_contiguous(), x.is_contiguous()) << what;
        // Within float32 rounding of float64: the fused pass rounds the mean
        // to float32 as TF.js's tensor holds it (half an ulp of 1000 is 3e-5,
        // against a standard deviation of 0.1); the tensor operations lose
        // more, up to 1e-3, to float32's sums (so does the NCHW batch, which
        // takes them without a gradient too).
        const bool fusable = x.dim() != 4 || !x.is_contiguous();
        const double tolerance = fusable ? 1e-4 : 2e-3;
        EXPECT_TRUE(fused.allclose(ref, 1e-5, tolerance))
            << what << ": " << (fused - ref).abs().max();
        EXPECT_TRUE(ops.detach().allclose(ref, 1e-3, 2e-3))
            << what << ": " << (ops.detach() - ref).abs().max();
        for (size_t i = fused_w.size() - 2; i < fused_w.size(); ++i) {
          EXPECT_TRUE(fused_w[i].allclose(ref_w[i].to(at::kFloat), 1e-6, 1e-6))
              << what << " moving statistic " << i << ": " << fused_w[i] << ref_w[i];
          EXPECT_TRUE(ops_w[i].allclose(ref_w[i].to(at::kFloat), 1e-5, 1e-5))
              << what << " moving statistic " << i << ": " << ops_w[i] << ref_w[i];
        }
        if (training) {
          // Normalised: each channel's mean beta (0 without), its biased
          // variance gamma^2 * var / (var + epsilon).
          const std::vector<int64_t> axes =
              x.dim() == 4 ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
          const at::Tensor beta = affine ? at::linspace(-0.2, 0.3, 5) : at::zeros({5});
          EXPECT_TRUE(fused.mean(axes).allclose(beta, 1e-4, tolerance)) << what << fused.mean(axes);
        }
      }
    }
  }
  // With no gradient wanted, a value no one else holds (as the model's graph
  // hands a layer the value only it reads) is overwritten in place; one held
  // elsewhere, or a view of another's memory, is left as it was. Both give
  // the same values.
  {
    torch::NoGradGuard no_grad;
    for (const char* cls : {"BatchNormalization", "ReLU"}) {
      const ordered_json config =
          std::string(cls) == "ReLU" ? ordered_json{{"max_value", 0.5}} : ordered_json::object();
      const auto weights = [&] {
        return std::string(cls) == "ReLU" ? std::vector<at::Tensor>{}
                                          : std::vector<at::Tensor>{at::ones({5}), at::zeros({5}),
                                                                    at::zeros({5}), at::ones({5})};
      };
      const at::Tensor held = inputs[0].clone(at::MemoryFormat::ChannelsLast);
      const at::Tensor before = held.clone();
      const at::Tensor from_held = apply_layer(cls, config, held, weights());
      EXPECT_TRUE(held.equal(before)) << cls << ": an input held elsewhere was overwritten";
      const at::Tensor view = held.narrow(0, 0, 2);
      (void)apply_layer(cls, config, view, weights());
      EXPECT_TRUE(held.equal(before)) << cls << ": a view's memory was overwritten";
      at::Tensor alone = held.clone(at::MemoryFormat::ChannelsLast);
      const void* memory = alone.data_ptr();
      std::vector<at::Tensor> in;
      in.push_back(std::move(alone));
      LayerPtr l = test::layer(cls, "a", config);
      std::vector<WeightSpec> specs;
      l->build({{6, 7, 5}}, specs);
      const at::Tensor from_alone = l->call(in, weights(), CallContext{});
      EXPECT_EQ(from_alone.data_ptr(), memory) << cls << ": not computed in place";
      EXPECT_TRUE(from_alone.equal(from_held)) << cls;
    }
  }
  // A NaN in a feature makes its statistics NaN on both paths (and its
  // moving variance), as TF.js's moments; the other features stay finite.
  {
    at::Tensor with_nan = inputs[0].clone(at::MemoryFormat::ChannelsLast);
    with_nan[1][2][3][4] = std::numeric_limits<float>::quiet_NaN();
    for (const bool grad : {false, true}) {
      std::vector<at::Tensor> w = {at::ones({5}), at::zeros({5}), at::zeros({5}), at::ones({5})};
      const at::Tensor x = grad ? with_nan.clone().requires_grad_(true) : with_nan;
      at::Tensor y;
      {
        std::optional<torch::NoGradGuard> no_grad;
        if (!grad) {
          no_grad.emplace();
        }
        y = apply_layer("BatchNormalization", ordered_json::object(), x, w, true);
      }
      EXPECT_TRUE(std::isnan(w[3][2].item<float>())) << "gradient " << grad << ": " << w[3];
      EXPECT_TRUE(at::isfinite(w[3].narrow(0, 0, 2)).all().item<bool>()) << w[3];
      EXPECT_TRUE(at::isnan(y.select(1, 2)).all().item<bool>()) << "gradient " << grad;
      EXPECT_TRUE(at::isfinite(y.select(1, 1)).all().item<bool>()) << "gradient " << grad;
    }
  }
  // A gradient wanted from gamma alone (a trainable layer on a frozen base's
  // output) also takes the tensor operations.
  std::vector<at::Tensor> w = {at::ones({5}).requires_grad_(true), at::zeros({5}), at::zeros({5}),
                               at::ones({5})};
  EXPECT_TRUE(apply_layer("BatchNormalization", ordered_json::object(), inputs[0], w, true)
                  .requires_grad());
}

// Padding with no gradient wanted writes a channels-last batch's rows once
// (kernels.hpp) instead of constant_pad_nd's fill and copy: the same values,
// as ZeroPadding2D, a convolution's uneven "same" padding and max pooling's
// -infinity give them; with a gradient wanted, constant_pad_nd's.
TEST(AxisRuleTest, PaddingWithoutGradientsEqualsConstantPad) {
  at::manual_seed(5);
  const at::Tensor image = at::randn({3, 4, 5, 6});
  const at::Tensor cl = image.contiguous(at::MemoryFormat::ChannelsLast);
  const ordered_json padding = {{"padding", {{1, 2}, {0, 3}}}};
  const at::Tensor expected = at::constant_pad_nd(image, {0, 3, 1, 2}, 0.0);
  {
    torch::NoGradGuard no_grad;
    for (const at::Tensor& x : {cl, image}) {
      const at::Tensor y = apply_layer("ZeroPadding2D", padding, x, {});
      EXPECT_TRUE(y.equal(expected));
      EXPECT_EQ(y.is_contiguous(at::MemoryFormat::ChannelsLast),
                x.is_contiguous(at::MemoryFormat::ChannelsLast));
    }
    // Max pooling's "same" padding (-infinity) at stride 2: rows 1 and 1, columns 0 and 1.
    const at::Tensor pooled = apply_layer(
        "MaxPooling2D", {{"pool_size", {3, 3}}, {"strides", {2, 2}}, {"padding", "same"}}, cl, {});
    const at::Tensor reference = at::max_pool2d(
        at::constant_pad_nd(image, {0, 1, 1, 1}, -std::numeric_limits<double>::infinity()), {3, 3},
        {2, 2});
    EXPECT_TRUE(pooled.equal(reference)) << pooled.sizes() << reference.sizes();
  }
  const at::Tensor wants_grad = cl.clone().requires_grad_(true);
  const at::Tensor y = apply_layer("ZeroPadding2D", padding, wants_grad, {});
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(wants_grad.grad().equal(at::ones_like(image)));
}

TEST(AxisRuleTest, LayerNormalizationAndPreluOfARank3TensorFollowTfjs) {
  torch::NoGradGuard no_grad;
  const at::Tensor rows = seq({2, 2, 3}, 5);
  expect_tfjs(apply_layer("LayerNormalization", ordered_json::object(), rows,
                          {at::ones({3}), at::zeros({3})}),
              {2, 2, 3},
              {-1.224157452583313f, 0, 1.224157452583313f, -1.224157452583313f, 0,
               1.224157452583313f, -0.2018822729587555f, 1.3122345209121704f, -1.1103523969650269f,
               -0.2018822282552719f, 1.3122345209121704f, -1.1103522777557373f},
              "LayerNormalization");
  expect_tfjs(apply_layer("PReLU", {{"shared_axes", {1}}}, rows,
                          {at::tensor({0.1f, 0.2f, 0.3f}).view({1, 3})}),
              {2, 2, 3},
              {-0.15000000596046448f, -0.05000000074505806f, 1, -0.10000000149011612f, 0.25f, 1.5f,
               -0.05000000074505806f, 0.75f, -0.375f, 0, 1.25f, -0.22500000894069672f},
              "PReLU shared over the rows");
}

}  // namespace
}  // namespace mnist
