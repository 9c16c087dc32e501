// The layer registry: its table, and each activation and activation, padding
// and reshaping layer against TF.js's formulas (tfjs-layers 4.22,
// activations.ts, advanced_activations.ts, padding.ts, convolutional.ts,
// core.ts). The real-TF.js checks of the same layers: tests/CMakeLists.txt,
// tfjs_model.activations and tfjs_model.reshaping.
#include "mnist/layers.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
#include "mnist/model.hpp"
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
                          "LayerNormalization"}) {
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

}  // namespace
}  // namespace mnist
