// Winograd convolutions through oneDNN: the same values and gradients as
// libtorch's convolution, taken only where they apply, and a model that
// computes the same with and without them.
#include "mnist/winograd.hpp"

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/autograd.h>
#include <torch/utils.h>
#include <torch/version.h>

#include "mnist/device.hpp"
#include "mnist/error.hpp"
#include "mnist/model.hpp"
#include "mnist/train.hpp"

namespace mnist {
namespace {

/// Largest difference relative to the reference's largest magnitude.
double rel_diff(const at::Tensor& got, const at::Tensor& want) {
  return (got - want).abs().max().item<double>() / want.abs().max().item<double>();
}

/// Restores the process-wide switch at the end of a test.
class WinogradSwitch {
 public:
  explicit WinogradSwitch(bool on) : was_(winograd_enabled()) { set_winograd_enabled(on); }
  ~WinogradSwitch() { set_winograd_enabled(was_); }
  WinogradSwitch(const WinogradSwitch&) = delete;
  WinogradSwitch& operator=(const WinogradSwitch&) = delete;

 private:
  bool was_;
};

struct Case {
  int64_t batch, in, out, size;
  ConvPadding pad;
  bool relu;
  bool bias;
};

class WinogradCaseTest : public ::testing::TestWithParam<Case> {};

TEST_P(WinogradCaseTest, MatchesLibtorchForwardAndBackward) {
  if (!winograd_available()) {
    GTEST_SKIP() << "this build or CPU has no oneDNN Winograd kernels";
  }
  const Case c = GetParam();
  const WinogradSwitch on(true);
  torch::manual_seed(7);
  const auto cl = at::MemoryFormat::ChannelsLast;
  const at::Tensor x0 = at::randn({c.batch, c.in, c.size, c.size}).contiguous(cl);
  const at::Tensor k0 = (at::randn({c.out, c.in, 3, 3}) * 0.1).contiguous(cl);
  const at::Tensor b0 = c.bias ? at::randn({c.out}) : at::Tensor();
  ASSERT_TRUE(winograd_supports(x0, k0, c.pad));

  const auto leaf = [](const at::Tensor& t) {
    return t.defined() ? t.detach().clone().requires_grad_(true) : at::Tensor();
  };
  const at::Tensor x1 = leaf(x0), k1 = leaf(k0), b1 = leaf(b0);
  const at::Tensor x2 = leaf(x0), k2 = leaf(k0), b2 = leaf(b0);
  const at::Tensor ours = winograd_conv2d(x1, k1, b1, c.pad, c.relu);
  at::Tensor ref = at::conv2d(
      at::constant_pad_nd(x2, {c.pad.left, c.pad.right, c.pad.top, c.pad.bottom}), k2, b2);
  if (c.relu) {
    ref = at::relu(ref);
  }
  ASSERT_EQ(ours.sizes(), ref.sizes());
  EXPECT_TRUE(ours.is_contiguous(cl));
  EXPECT_LT(rel_diff(ours, ref), 1e-5);

  const at::Tensor upstream = at::randn(ref.sizes());
  (ours * upstream).sum().backward();
  (ref * upstream).sum().backward();
  EXPECT_LT(rel_diff(x1.grad(), x2.grad()), 1e-5);
  EXPECT_LT(rel_diff(k1.grad(), k2.grad()), 1e-5);
  EXPECT_EQ(k1.grad().strides(), k1.strides());
  if (c.bias) {
    EXPECT_LT(rel_diff(b1.grad(), b2.grad()), 1e-5);
  }

  // Without gradients (evaluation): the inference kernels, same values.
  const torch::NoGradGuard no_grad;
  EXPECT_LT(rel_diff(winograd_conv2d(x0, k0, b0, c.pad, c.relu), ref.detach()), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes,
    WinogradCaseTest,
    ::testing::Values(Case{6, 32, 64, 12, {}, true, true},            // mnist-node's conv 3
                      Case{5, 64, 64, 10, {}, true, true},            // conv 4, odd batch
                      Case{3, 32, 32, 26, {}, false, true},           // conv 2, no ReLU
                      Case{4, 16, 32, 9, {1, 1, 1, 1}, true, false})); // "same", no bias

TEST(WinogradTest, InputGradientOnlyWhenAsked) {
  if (!winograd_available()) {
    GTEST_SKIP() << "this build or CPU has no oneDNN Winograd kernels";
  }
  const WinogradSwitch on(true);
  const at::Tensor x = at::randn({2, 16, 8, 8});  // NCHW input: reordered, no gradient
  const at::Tensor k = at::randn({16, 16, 3, 3}).requires_grad_(true);
  const at::Tensor b = at::zeros({16}).requires_grad_(true);
  winograd_conv2d(x, k, b, ConvPadding{}, true).sum().backward();
  EXPECT_TRUE(k.grad().defined());
  EXPECT_TRUE(b.grad().defined());
  EXPECT_FALSE(x.grad().defined());
}

TEST(WinogradTest, NotTakenWhereItDoesNotApply) {
  const WinogradSwitch on(true);
  const ConvPadding valid;
  const at::Tensor x = at::randn({2, 32, 12, 12});
  const at::Tensor k = at::randn({32, 32, 3, 3});
  EXPECT_FALSE(winograd_supports(at::randn({2, 1, 28, 28}), at::randn({32, 1, 3, 3}), valid))
      << "one input channel (mnist-node's first layer)";
  EXPECT_FALSE(winograd_supports(x, at::randn({32, 32, 5, 5}), valid)) << "5x5 kernel";
  EXPECT_FALSE(winograd_supports(x, k, ConvPadding{0, 1, 0, 1}))
      << "uneven padding (oneDNN 2.6 gets the input gradient wrong)";
  EXPECT_FALSE(winograd_supports(x.to(at::kDouble), k.to(at::kDouble), valid)) << "float64";
  EXPECT_FALSE(winograd_supports(at::randn({2, 24, 12, 12}), at::randn({32, 24, 3, 3}), valid))
      << "24 channels";
  {
    const WinogradSwitch off(false);
    EXPECT_FALSE(winograd_supports(x, k, valid)) << "switched off";
  }
  {
    const AutocastGuard bf16(Precision::kBFloat16, c10::Device(c10::kCPU));
    EXPECT_FALSE(winograd_supports(x, k, valid)) << "bf16 autocast keeps libtorch's kernels";
  }
  EXPECT_EQ(winograd_supports(x, k, valid), winograd_available());
  if (!winograd_available()) {
    EXPECT_THROW(winograd_conv2d(x, k, at::Tensor(), valid, true), ConfigError);
  }
}

/// The mnist-node model computes the same logits and gradients whichever
/// kernels its convolutions use.
TEST(WinogradTest, ModelSameWithAndWithout) {
  if (!winograd_available()) {
    GTEST_SKIP() << "this build or CPU has no oneDNN Winograd kernels";
  }
  torch::manual_seed(11);
  Model model(mnist_node_spec());
  to_channels_last(model);
  model->eval();  // no dropout: both passes see the same network
  const at::Tensor images = at::rand({8, 1, 28, 28});
  const auto run = [&](bool winograd) {
    const WinogradSwitch sw(winograd);
    for (auto& p : model->parameters()) {
      p.mutable_grad().reset();
    }
    const at::Tensor logits = model->forward(images);
    logits.logsumexp(1).sum().backward();
    std::vector<at::Tensor> out{logits.detach()};
    for (const auto& p : model->parameters()) {
      out.push_back(p.grad().clone());
    }
    return out;
  };
  const auto with = run(true);
  const auto without = run(false);
  ASSERT_EQ(with.size(), without.size());
  for (size_t i = 0; i < with.size(); ++i) {
    EXPECT_LT(rel_diff(with[i], without[i]), 1e-4) << "tensor " << i;
  }
}

}  // namespace
}  // namespace mnist
