// oneDNN's convolutions and pooling (mnist/onednn.hpp): the same values and
// gradients as libtorch's convolution (Winograd in float32, bf16 kernels
// under autocast), taken
// only where they apply; max pooling through oneDNN, exactly libtorch's;
// and a model that computes the same with and without them.
#include "mnist/onednn.hpp"

#include <limits>
#include <string>
#include <tuple>
#include <vector>

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
class ConvSwitch {
 public:
  explicit ConvSwitch(bool on) : was_(onednn_enabled()) { set_onednn_enabled(on); }
  ~ConvSwitch() { set_onednn_enabled(was_); }
  ConvSwitch(const ConvSwitch&) = delete;
  ConvSwitch& operator=(const ConvSwitch&) = delete;

 private:
  bool was_;
};

struct Case {
  int64_t batch, in, out, size;
  ConvPadding pad;
  bool relu;
  bool bias;
};

/// Uses `kernels` for the Winograd convolutions while it lives.
class WinogradChoice {
 public:
  explicit WinogradChoice(WinogradKernels kernels) { set_winograd_kernels(kernels); }
  ~WinogradChoice() { reset_winograd_kernels(); }
  WinogradChoice(const WinogradChoice&) = delete;
  WinogradChoice& operator=(const WinogradChoice&) = delete;
};

/// Sends max pooling to oneDNN while it lives (whatever the default here).
class OnednnPooling {
 public:
  OnednnPooling() { set_onednn_pooling(true); }
  ~OnednnPooling() { reset_onednn_pooling(); }
  OnednnPooling(const OnednnPooling&) = delete;
  OnednnPooling& operator=(const OnednnPooling&) = delete;
};

/// Whether this machine and build run `kernels`, and if not, why.
std::string missing(WinogradKernels kernels) {
  if (kernels == WinogradKernels::kOnednn && !winograd_available()) {
    return "this build or CPU has no oneDNN Winograd kernels (AVX-512)";
  }
  if (kernels == WinogradKernels::kOwnAvx2 && !own_winograd_available()) {
    return "this CPU lacks AVX2 or FMA";
  }
  return "";
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.batch << "x" << c.in << "x" << c.size << "x" << c.size << " -> " << c.out << " pad "
      << c.pad.top << (c.relu ? " relu" : "") << (c.bias ? " bias" : "");
}

class WinogradCaseTest : public ::testing::TestWithParam<std::tuple<Case, WinogradKernels>> {};

TEST_P(WinogradCaseTest, MatchesLibtorchForwardAndBackward) {
  const Case c = std::get<0>(GetParam());
  const WinogradKernels kernels = std::get<1>(GetParam());
  if (const std::string why = missing(kernels); !why.empty()) {
    GTEST_SKIP() << why;
  }
  if (kernels == WinogradKernels::kOnednn && c.pad.top > 1) {
    GTEST_SKIP() << "oneDNN's Winograd kernels take padding up to 1";
  }
  const WinogradChoice choice(kernels);
  const ConvSwitch on(true);
  torch::manual_seed(7);
  const auto cl = at::MemoryFormat::ChannelsLast;
  const at::Tensor x0 = at::randn({c.batch, c.in, c.size, c.size}).contiguous(cl);
  const at::Tensor k0 = (at::randn({c.out, c.in, 3, 3}) * 0.1).contiguous(cl);
  const at::Tensor b0 = c.bias ? at::randn({c.out}) : at::Tensor();
  ASSERT_TRUE(onednn_conv_supports(x0, k0, c.pad));

  const auto leaf = [](const at::Tensor& t) {
    return t.defined() ? t.detach().clone().requires_grad_(true) : at::Tensor();
  };
  const at::Tensor x1 = leaf(x0), k1 = leaf(k0), b1 = leaf(b0);
  const at::Tensor x2 = leaf(x0), k2 = leaf(k0), b2 = leaf(b0);
  const at::Tensor ours = onednn_conv2d(x1, k1, b1, c.pad, c.relu);
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
  EXPECT_LT(rel_diff(onednn_conv2d(x0, k0, b0, c.pad, c.relu), ref.detach()), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes,
    WinogradCaseTest,
    ::testing::Combine(
        ::testing::Values(Case{6, 32, 64, 12, {}, true, true},             // mnist-node's conv 3
                          Case{5, 64, 64, 10, {}, true, true},             // conv 4, odd batch
                          Case{3, 32, 32, 26, {}, false, true},            // conv 2, no ReLU
                          Case{4, 16, 32, 9, {1, 1, 1, 1}, true, false},   // "same", no bias
                          Case{2, 32, 16, 7, {2, 2, 2, 2}, false, true},   // full padding
                          Case{13, 16, 48, 5, {0, 0, 0, 0}, true, true}),  // 3x3 output, 13 images
        ::testing::Values(WinogradKernels::kOnednn, WinogradKernels::kOwnAvx2)),
    [](const ::testing::TestParamInfo<std::tuple<Case, WinogradKernels>>& info) {
      const Case& c = std::get<0>(info.param);
      const bool own = std::get<1>(info.param) == WinogradKernels::kOwnAvx2;
      return std::string(own ? "own_" : "onednn_") + "n" + std::to_string(c.batch) + "_c" +
             std::to_string(c.in) + "_o" + std::to_string(c.out) + "_hw" + std::to_string(c.size) +
             "_pad" + std::to_string(c.pad.top) + (c.relu ? "_relu" : "") + (c.bias ? "_bias" : "");
    });

/// The Winograd kernels this machine runs (oneDNN's, ours, both or none).
std::vector<WinogradKernels> present_kernels() {
  std::vector<WinogradKernels> out;
  for (const WinogradKernels k : {WinogradKernels::kOnednn, WinogradKernels::kOwnAvx2}) {
    if (missing(k).empty()) {
      out.push_back(k);
    }
  }
  return out;
}

TEST(WinogradTest, InputGradientOnlyWhenAsked) {
  if (present_kernels().empty()) {
    GTEST_SKIP() << "no Winograd kernels here (neither AVX-512 for oneDNN's nor AVX2 for ours)";
  }
  for (const WinogradKernels kernels : present_kernels()) {
    const WinogradChoice choice(kernels);
    const ConvSwitch on(true);
    const at::Tensor x = at::randn({2, 16, 8, 8});  // NCHW input: reordered, no gradient
    const at::Tensor k = at::randn({16, 16, 3, 3}).requires_grad_(true);
    const at::Tensor b = at::zeros({16}).requires_grad_(true);
    onednn_conv2d(x, k, b, ConvPadding{}, true).sum().backward();
    EXPECT_TRUE(k.grad().defined()) << winograd_kernels_name(kernels);
    EXPECT_TRUE(b.grad().defined()) << winograd_kernels_name(kernels);
    EXPECT_FALSE(x.grad().defined()) << winograd_kernels_name(kernels);
    EXPECT_EQ(k.grad().strides(), k.strides());
  }
}

TEST(WinogradTest, NotTakenWhereItDoesNotApply) {
  const ConvSwitch on(true);
  const ConvPadding valid;
  const at::Tensor x = at::randn({2, 32, 12, 12});
  const at::Tensor k = at::randn({32, 32, 3, 3});
  EXPECT_FALSE(onednn_conv_supports(at::randn({2, 1, 28, 28}), at::randn({32, 1, 3, 3}), valid))
      << "one input channel (mnist-node's first layer)";
  EXPECT_FALSE(onednn_conv_supports(x, at::randn({32, 32, 5, 5}), valid)) << "5x5 kernel";
  EXPECT_FALSE(onednn_conv_supports(x, k, ConvPadding{0, 1, 0, 1}))
      << "uneven padding (oneDNN 2.6 gets the input gradient wrong)";
  EXPECT_FALSE(onednn_conv_supports(x.to(at::kDouble), k.to(at::kDouble), valid)) << "float64";
  EXPECT_FALSE(onednn_conv_supports(at::randn({2, 32}), k, valid)) << "not an image batch";
  EXPECT_FALSE(onednn_conv_supports(x, at::randn({32, 32, 3}), valid)) << "not a 2-D kernel";
  EXPECT_FALSE(onednn_conv_supports(at::randn({2, 24, 12, 12}), at::randn({32, 24, 3, 3}), valid))
      << "24 channels";
  {
    const ConvSwitch off(false);
    EXPECT_FALSE(onednn_conv_supports(x, k, valid)) << "switched off";
  }
  EXPECT_FALSE(try_onednn_conv2d(at::randn({2, 1, 28, 28}), at::randn({32, 1, 3, 3}), at::Tensor(),
                                 valid, true)
                   .defined())
      << "refused: libtorch's convolution runs instead";
  const bool winograd = winograd_kernels() != WinogradKernels::kNone;
  EXPECT_EQ(onednn_conv_supports(x, k, valid), winograd);
  EXPECT_EQ(try_onednn_conv2d(x, k, at::Tensor(), valid, true).defined(), winograd);
  if (!winograd) {
    EXPECT_THROW(onednn_conv2d(x, k, at::Tensor(), valid, true), ConfigError);
  }
}

/// Under bf16 autocast: bf16 results and input gradients close to
/// libtorch's autocast convolution, float32 kernel and bias gradients, and
/// ReLU's gradient zero exactly where the output is.
TEST(OnednnBf16Test, MatchesLibtorchAutocast) {
  if (!winograd_available() || !cpu_has_bf16()) {
    GTEST_SKIP() << "this build or CPU has no oneDNN bf16 kernels";
  }
  const ConvSwitch on(true);
  torch::manual_seed(5);
  const auto cl = at::MemoryFormat::ChannelsLast;
  for (const int64_t in : {1, 32}) {  // the first layer too: any channel count
    const at::Tensor x0 = at::randn({4, in, 12, 12}).contiguous(cl);
    const at::Tensor k0 = (at::randn({64, in, 3, 3}) * 0.2).contiguous(cl);
    const at::Tensor b0 = at::randn({64});
    const at::Tensor upstream = at::randn({4, 64, 10, 10});
    const auto leaf = [](const at::Tensor& t) { return t.detach().clone().requires_grad_(true); };
    // Without ReLU, gradients compare directly (bf16 rounding may flip
    // ReLU's mask where the output is near zero).
    const at::Tensor x1 = leaf(x0), k1 = leaf(k0), b1 = leaf(b0);
    const at::Tensor x2 = leaf(x0), k2 = leaf(k0), b2 = leaf(b0);
    at::Tensor ours, ref, ours_relu;
    {
      const AutocastGuard bf16(Precision::kBFloat16, c10::Device(c10::kCPU));
      ASSERT_TRUE(onednn_conv_supports(x1, k1, ConvPadding{}));
      EXPECT_FALSE(onednn_conv_supports(x1, k1, ConvPadding{0, 1, 0, 1})) << "uneven padding";
      ours = onednn_conv2d(x1, k1, b1, ConvPadding{}, false);
      ref = at::conv2d(x2, k2, b2);
      ours_relu = onednn_conv2d(x0, k0, b0, ConvPadding{}, true);
    }
    EXPECT_EQ(ours.scalar_type(), at::kBFloat16);
    ASSERT_EQ(ours.sizes(), ref.sizes());
    EXPECT_LT(rel_diff(ours.to(at::kFloat), ref.to(at::kFloat)), 2e-2) << in << " channels";
    EXPECT_TRUE(ours_relu.equal(at::relu(ours.detach()))) << in << " channels";
    (ours.to(at::kFloat) * upstream).sum().backward();
    (ref.to(at::kFloat) * upstream).sum().backward();
    EXPECT_EQ(k1.grad().scalar_type(), at::kFloat);
    EXPECT_EQ(b1.grad().scalar_type(), at::kFloat);
    EXPECT_LT(rel_diff(x1.grad(), x2.grad()), 2e-2) << in << " channels";
    EXPECT_LT(rel_diff(k1.grad(), k2.grad()), 2e-2) << in << " channels";
    EXPECT_LT(rel_diff(b1.grad(), b2.grad()), 2e-2) << in << " channels";

    // With ReLU: the input gradient is the one of the masked upstream.
    const at::Tensor x3 = leaf(x0), x4 = leaf(x0);
    at::Tensor relu_out, plain_out;
    {
      const AutocastGuard bf16(Precision::kBFloat16, c10::Device(c10::kCPU));
      relu_out = onednn_conv2d(x3, k0, b0, ConvPadding{}, true);
      plain_out = onednn_conv2d(x4, k0, b0, ConvPadding{}, false);
    }
    (relu_out.to(at::kFloat) * upstream).sum().backward();
    (plain_out.to(at::kFloat) * (upstream * plain_out.detach().gt(0))).sum().backward();
    EXPECT_LT(rel_diff(x3.grad(), x4.grad()), 1e-2) << in << " channels";
  }
}

struct PoolCase {
  std::vector<int64_t> shape;  // N, C, H, W
  std::vector<int64_t> kernel, strides;
  ConvPadding pad;
};

/// libtorch's max pooling over an input padded with -infinity.
at::Tensor libtorch_max_pool(const at::Tensor& x, const PoolCase& c) {
  const at::Tensor padded =
      at::constant_pad_nd(x, {c.pad.left, c.pad.right, c.pad.top, c.pad.bottom},
                          -std::numeric_limits<double>::infinity());
  return at::max_pool2d(padded, c.kernel, c.strides);
}

/// Max is exact: the same values, and the same cell of each window gets the
/// gradient (the first largest, as libtorch picks it), also where windows
/// tie (ReLU's zeros) or overlap, with uneven padding, and in bf16; only
/// sums over overlapping windows round differently.
TEST(OnednnMaxPoolTest, SameAsLibtorchExactly) {
  const OnednnPooling pooling;
  if (!onednn_built()) {
    GTEST_SKIP() << "this build calls no oneDNN kernels itself";
  }
  const std::vector<PoolCase> cases{
      {{4, 32, 24, 24}, {2, 2}, {2, 2}, {}},         // mnist-node's first pooling
      {{3, 16, 7, 7}, {2, 2}, {2, 2}, {}},           // odd size: the last row is dropped
      {{2, 8, 8, 8}, {3, 3}, {2, 2}, {0, 1, 0, 1}},  // TF "same": uneven padding
      {{2, 4, 6, 5}, {2, 2}, {1, 1}, {}},            // overlapping windows
      {{2, 3, 9, 9}, {3, 2}, {3, 2}, {1, 1, 0, 1}},  // unequal kernel and strides
  };
  for (const at::ScalarType type : {at::kFloat, at::kBFloat16}) {
    for (const bool relu : {false, true}) {
      for (const PoolCase& c : cases) {
        torch::manual_seed(5);
        at::Tensor x = at::randn(c.shape);
        if (relu) {
          x = x.relu();  // about half the cells 0: many tied windows
        }
        x = x.to(type).contiguous(at::MemoryFormat::ChannelsLast);
        const at::Tensor x1 = x.clone().requires_grad_(true);
        const at::Tensor x2 = x.clone().requires_grad_(true);
        const at::Tensor got = try_onednn_max_pool2d(x1, c.kernel, c.strides, c.pad);
        if (!got.defined() && type == at::kBFloat16 && !cpu_has_bf16()) {
          // oneDNN has no bf16 pooling on AVX2 (a real AVX2 CPU, or
          // ONEDNN_MAX_CPU_ISA=AVX2): the call is declined, and the model
          // then runs libtorch's pooling, the reference here.
          continue;
        }
        ASSERT_TRUE(got.defined()) << c.shape << " " << type;
        const at::Tensor want = libtorch_max_pool(x2, c);
        ASSERT_EQ(got.sizes(), want.sizes());
        EXPECT_EQ(got.scalar_type(), type);
        EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
        EXPECT_TRUE(got.equal(want)) << c.shape << " " << type;
        const at::Tensor upstream = at::randn(want.sizes()).to(type);
        got.backward(upstream);
        want.backward(upstream);
        const bool overlap = c.kernel[0] > c.strides[0] || c.kernel[1] > c.strides[1];
        if (!overlap) {
          EXPECT_TRUE(x1.grad().equal(x2.grad())) << c.shape << " " << type << " relu " << relu;
        } else {
          // A cell that wins several windows sums their gradients, in
          // another order than libtorch: the same cells, rounding apart.
          EXPECT_TRUE((x1.grad() != 0).equal(x2.grad() != 0)) << c.shape << " " << type;
          EXPECT_LT(rel_diff(x1.grad().to(at::kFloat), x2.grad().to(at::kFloat)),
                    type == at::kFloat ? 1e-6 : 1e-2)
              << c.shape << " " << type;
        }
      }
    }
  }
}

TEST(OnednnMaxPoolTest, ForwardOnlyAndAnyLayout) {
  const OnednnPooling pooling;
  if (!onednn_built()) {
    GTEST_SKIP() << "this build calls no oneDNN kernels itself";
  }
  const PoolCase c{{3, 16, 10, 10}, {2, 2}, {2, 2}, {}};
  const at::Tensor x = at::randn(c.shape);  // NCHW
  {
    const at::NoGradGuard no_grad;
    const at::Tensor got = try_onednn_max_pool2d(x, c.kernel, c.strides, c.pad);
    ASSERT_TRUE(got.defined());
    EXPECT_TRUE(got.equal(libtorch_max_pool(x, c)));
  }
  // An input that needs no gradient gets no autograd node.
  const at::Tensor got = try_onednn_max_pool2d(x, c.kernel, c.strides, c.pad);
  ASSERT_TRUE(got.defined());
  EXPECT_FALSE(got.requires_grad());
}

TEST(OnednnMaxPoolTest, NotTakenWhereItDoesNotApply) {
  const OnednnPooling pooling;
  const std::vector<int64_t> k{2, 2};
  const at::Tensor x = at::randn({2, 4, 6, 6});
  EXPECT_FALSE(try_onednn_max_pool2d(x.to(at::kDouble), k, k, {}).defined());
  EXPECT_FALSE(try_onednn_max_pool2d(x[0], k, k, {}).defined());         // 3-D
  EXPECT_FALSE(try_onednn_max_pool2d(x, k, k, {2, 0, 0, 0}).defined());  // padding >= window
  EXPECT_FALSE(try_onednn_max_pool2d(x, k, {0, 2}, {}).defined());
  EXPECT_FALSE(try_onednn_max_pool2d(at::randn({2, 4, 1, 6}), k, k, {}).defined());  // too small
  {
    const ConvSwitch off(false);
    EXPECT_FALSE(try_onednn_max_pool2d(x, k, k, {}).defined());
  }
  set_onednn_pooling(false);  // libtorch's pooling chosen (the default on AVX2)
  EXPECT_FALSE(try_onednn_max_pool2d(x, k, k, {}).defined());
}

/// The log line names what runs, as chosen.
TEST(OnednnConvTest, DescribeCpuKernelsSaysWhatRuns) {
  {
    const WinogradChoice own(WinogradKernels::kOwnAvx2);
    EXPECT_NE(describe_cpu_kernels(false).find("mnist-train's own Winograd (AVX2)"),
              std::string::npos);
  }
  {
    const WinogradChoice none(WinogradKernels::kNone);
    EXPECT_EQ(describe_cpu_kernels(false).rfind("convolutions: libtorch's", 0), 0U);
  }
  set_onednn_pooling(false);
  EXPECT_NE(describe_cpu_kernels(false).find("max pooling: libtorch's"), std::string::npos);
  reset_onednn_pooling();
  const ConvSwitch off(false);
  EXPECT_EQ(describe_cpu_kernels(false), "convolutions: libtorch's; max pooling: libtorch's");
}

/// The mnist-node model computes the same logits and gradients whichever
/// calls its convolutions make, in float32 and (more loosely) in bf16.
TEST(OnednnConvTest, ModelSameWithAndWithout) {
  if (!onednn_built() && present_kernels().empty()) {
    GTEST_SKIP() << "this build or CPU has neither oneDNN's kernels nor ours";
  }
  torch::manual_seed(11);
  Model model(mnist_node_spec());
  to_channels_last(model);
  model->eval();  // no dropout: both passes see the same network
  const at::Tensor images = at::rand({8, 1, 28, 28});
  const auto run = [&](bool onednn, Precision precision) {
    const ConvSwitch sw(onednn);
    for (auto& p : model->parameters()) {
      p.mutable_grad().reset();
    }
    at::Tensor logits;
    {
      const AutocastGuard autocast(precision, c10::Device(c10::kCPU));
      logits = model->forward(images).to(at::kFloat);
    }
    logits.logsumexp(1).sum().backward();
    std::vector<at::Tensor> out{logits.detach()};
    for (const auto& p : model->parameters()) {
      out.push_back(p.grad().clone());
    }
    return out;
  };
  std::vector<Precision> precisions{Precision::kFloat32};
  if (cpu_has_bf16()) {
    precisions.push_back(Precision::kBFloat16);
  }
  std::vector<WinogradKernels> kernels = present_kernels();
  kernels.push_back(WinogradKernels::kNone);  // oneDNN's direct kernels (pooling too)
  for (const Precision precision : precisions) {
    const double tol = precision == Precision::kFloat32 ? 1e-4 : 5e-2;
    const auto without = run(false, precision);
    for (const WinogradKernels k : kernels) {
      const WinogradChoice choice(k);
      const auto with = run(true, precision);
      ASSERT_EQ(with.size(), without.size());
      for (size_t i = 0; i < with.size(); ++i) {
        EXPECT_LT(rel_diff(with[i], without[i]), tol)
            << precision_name(precision) << ", " << winograd_kernels_name(k) << ", tensor " << i;
      }
    }
  }
}

}  // namespace
}  // namespace mnist
