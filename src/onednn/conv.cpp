// Convolutions through oneDNN (see onednn.hpp): a custom autograd function
// over oneDNN's forward and two backward primitives, with ReLU fused. Tensors
// stay libtorch's: each Winograd call reorders the input into the blocked
// layout its kernels read (nChw16c) and the result back to channels-last,
// which costs a few percent of the convolution it replaces; the bf16 kernels
// read and write channels-last tensors as they are.
#include "mnist/onednn.hpp"

#ifdef MNIST_WITH_ONEDNN

#include <algorithm>
#include <array>
#include <memory>
#include <unordered_map>
#include <vector>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "mnist/device.hpp"
#include "mnist/error.hpp"
#include "onednn/common.hpp"
#include "onednn/conv.hpp"

namespace mnist {

namespace {

using namespace onednn;  // NOLINT(google-build-using-namespace): this module's own helpers

/// Which oneDNN kernels a convolution gets.
enum class Kind : int64_t {
  kNone,
  kWinograd,    ///< float32, no autocast: Winograd F(4x4, 3x3)
  kDirectBf16,  ///< bf16 autocast: direct bf16 kernels, float32 weights in, gradients out
};

/// The checks that need no oneDNN: dtype, device, shapes, autocast.
Kind kind_for(const at::Tensor& input, const at::Tensor& kernel) {
  if (!input.defined() || !kernel.defined() || !input.device().is_cpu() ||
      kernel.scalar_type() != at::kFloat || input.dim() != 4 || kernel.dim() != 4 ||
      kernel.size(1) != input.size(1) || kernel.size(2) != 3 || kernel.size(3) != 3) {
    return Kind::kNone;
  }
  if (const auto autocast = cpu_autocast_type()) {
    // Autocast to another type than bf16 (not ours) keeps libtorch's kernels.
    const bool bf16_in = input.scalar_type() == at::kFloat || input.scalar_type() == at::kBFloat16;
    return *autocast == at::kBFloat16 && bf16_in ? Kind::kDirectBf16 : Kind::kNone;
  }
  if (input.scalar_type() == at::kFloat && input.size(1) % 16 == 0 && kernel.size(0) % 16 == 0) {
    return Kind::kWinograd;
  }
  return Kind::kNone;
}

/// A convolution's shape and options, indexed by KeyField.
// (The fields read best as a list.)
// clang-format off
enum KeyField {
  kBatch, kChannels, kHeight, kWidth, kOutChannels, kPadTop, kPadBottom, kPadLeft, kPadRight,
  kRelu, kBias, kTraining, kKind, kKeyFields
};
// clang-format on
using Key = std::array<int64_t, kKeyFields>;

/// oneDNN's primitives for one shape: forward, and for training the two
/// backward passes (data and weights).
struct Plan {
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::convolution_backward_weights bwd_weights;
  /// ReLU's backward pass, in the forward output's layout (fused ReLU).
  dnnl::eltwise_backward relu_bwd;
};

Key make_key(at::IntArrayRef in,
             int64_t out_channels,
             const ConvPadding& pad,
             bool relu,
             bool bias,
             bool training,
             Kind kind) {
  return {in[0],
          in[1],
          in[2],
          in[3],
          out_channels,
          pad.top,
          pad.bottom,
          pad.left,
          pad.right,
          relu ? 1 : 0,
          bias ? 1 : 0,
          training ? 1 : 0,
          static_cast<int64_t>(kind)};
}

/// Builds the primitives for `key`, or returns null where oneDNN has no
/// kernel of that kind for it.
std::shared_ptr<Plan> build_plan(const Key& key) {
  using dt = memory::data_type;
  using tag = memory::format_tag;
  const int64_t n = key[kBatch], c = key[kChannels], h = key[kHeight], w = key[kWidth];
  const int64_t o = key[kOutChannels];
  const int64_t oh = h + key[kPadTop] + key[kPadBottom] - 2;
  const int64_t ow = w + key[kPadLeft] + key[kPadRight] - 2;
  const bool relu = key[kRelu] != 0, bias = key[kBias] != 0, training = key[kTraining] != 0;
  const bool winograd = static_cast<Kind>(key[kKind]) == Kind::kWinograd;
  if (oh < 1 || ow < 1) {
    return nullptr;
  }
  // Winograd picks its own (blocked) activation layout; the bf16 direct
  // kernels read and write libtorch's channels-last tensors as they are.
  const dt act = winograd ? dt::f32 : dt::bf16;
  const tag act_tag = winograd ? tag::any : tag::nhwc;
  const memory::desc src({n, c, h, w}, act, act_tag);
  const memory::desc wei({o, c, 3, 3}, act, tag::any);
  const memory::desc bia = bias ? memory::desc({o}, dt::f32, tag::a) : memory::desc();
  const memory::desc dst({n, o, oh, ow}, act, act_tag);
  // Gradients of the float32 master weights stay float32.
  const memory::desc diff_wei({o, c, 3, 3}, dt::f32, tag::any);
  const Dims strides{1, 1};
  const Dims pad_l{key[kPadTop], key[kPadLeft]}, pad_r{key[kPadBottom], key[kPadRight]};
  const auto alg =
      winograd ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0F, dnnl::algorithm::eltwise_relu, 0.0F, 0.0F);
    attr.set_post_ops(ops);
  }
  auto plan = std::make_shared<Plan>();
  try {
    // forward_training also for inference: its Winograd kernels read the
    // weights in a plain blocked layout; forward_inference's want a
    // Winograd-domain layout that oneDNN cannot reorder channels-last
    // weights into.
    const auto prop = dnnl::prop_kind::forward_training;
    plan->fwd_pd = dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(prop, alg, src, wei, bia, dst, strides, pad_l, pad_r), attr,
        cpu_engine());
    plan->fwd = dnnl::convolution_forward(plan->fwd_pd);
    if (training) {
      plan->bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(
          dnnl::convolution_backward_data::desc(alg, src, wei, dst, strides, pad_l, pad_r),
          cpu_engine(), plan->fwd_pd);
      plan->bwd_data = dnnl::convolution_backward_data(plan->bwd_data_pd);
      plan->bwd_weights_pd = dnnl::convolution_backward_weights::primitive_desc(
          dnnl::convolution_backward_weights::desc(alg, src, diff_wei, bia, dst, strides, pad_l,
                                                   pad_r),
          cpu_engine(), plan->fwd_pd);
      plan->bwd_weights = dnnl::convolution_backward_weights(plan->bwd_weights_pd);
      if (relu) {
        const memory::desc y = plan->fwd_pd.dst_desc();
        const auto relu_alg = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
        const dnnl::eltwise_forward::primitive_desc hint(
            dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, relu_alg, y, 0.0F, 0.0F),
            cpu_engine());
        plan->relu_bwd = dnnl::eltwise_backward(dnnl::eltwise_backward::primitive_desc(
            dnnl::eltwise_backward::desc(relu_alg, y, y, 0.0F, 0.0F), cpu_engine(), hint));
      }
    }
  } catch (const dnnl::error&) {
    return nullptr;  // no such kernel for this shape (or this CPU)
  }
  return plan;
}

std::shared_ptr<Plan> plan_for(const Key& key) { return cached_plan(key, &build_plan); }

/// Forward pass. With `saved`, also keeps what the backward passes read:
/// the input, and the output in oneDNN's layout (for ReLU's gradient).
struct Saved {
  at::Tensor input;
  at::Tensor output;
};
at::Tensor run_forward(const Plan& plan,
                       const at::Tensor& input,
                       const at::Tensor& kernel,
                       const at::Tensor& bias,
                       bool has_bias,
                       Saved* saved) {
  const auto& pd = plan.fwd_pd;
  const at::Tensor x = in_layout(input.contiguous(at::MemoryFormat::ChannelsLast), pd.src_desc());
  const at::Tensor k = in_layout(kernel, pd.weights_desc());
  const memory::dims out_dims = pd.dst_desc().dims();
  at::Tensor y;
  at::Tensor out = out_tensor(pd.dst_desc(), at::IntArrayRef(out_dims), &y);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mem(pd.src_desc(), x)},
                                       {DNNL_ARG_WEIGHTS, mem(pd.weights_desc(), k)},
                                       {DNNL_ARG_DST, mem(pd.dst_desc(), y)}};
  const at::Tensor b = has_bias ? bias.contiguous() : at::Tensor();
  if (has_bias) {
    args.emplace(DNNL_ARG_BIAS, mem(pd.bias_desc(), b));
  }
  plan.fwd.execute(cpu_stream(), args);
  if (saved != nullptr) {
    *saved = Saved{x, y};
  }
  to_tensor(pd.dst_desc(), y, out);
  return out;
}

class OnednnConvFunction : public torch::autograd::Function<OnednnConvFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx,
                            const at::Tensor& input,
                            const at::Tensor& kernel,
                            const at::Tensor& bias,
                            const Key& key,
                            const std::shared_ptr<Plan>& plan) {
    Saved saved;
    at::Tensor out = run_forward(*plan, input, kernel, bias, key[kBias] != 0, &saved);
    const bool relu = key[kRelu] != 0;
    // The output as oneDNN wrote it: `out` itself where the layouts agree
    // (save_for_backward then also catches in-place changes to it).
    ctx->save_for_backward({kernel, relu ? saved.output : at::Tensor()});
    ctx->saved_data["input"] = saved.input;
    save_key(ctx, key);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& kernel = saved[0];
    const at::Tensor& output = saved[1];
    const Key key = saved_key<Key>(ctx);
    const std::shared_ptr<Plan> plan = plan_for(key);
    const at::Tensor input = ctx->saved_data["input"].toTensor();

    // The output's gradient in the output's oneDNN layout, then ReLU's
    // gradient (ReLU was fused into the forward pass).
    const memory::desc& y = plan->fwd_pd.dst_desc();
    const at::Tensor grad = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor dy = in_layout(grad, y);
    if (output.defined()) {
      const at::Tensor masked = dy.is_same(grad) ? buffer_for(y) : dy;  // never write grads[0]
      plan->relu_bwd.execute(cpu_stream(), {{DNNL_ARG_DST, mem(y, output)},
                                            {DNNL_ARG_DIFF_DST, mem(y, dy)},
                                            {DNNL_ARG_DIFF_SRC, mem(y, masked)}});
      dy = masked;
    }
    const auto& wpd = plan->bwd_weights_pd;
    at::Tensor grad_input, grad_kernel, grad_bias;
    if (ctx->needs_input_grad(0)) {
      const auto& dpd = plan->bwd_data_pd;
      const at::Tensor k = in_layout(kernel, dpd.weights_desc());
      const at::Tensor dy_d = converted(y, dy, dpd.diff_dst_desc());
      at::Tensor dx;
      grad_input = out_tensor(dpd.diff_src_desc(),
                              {key[kBatch], key[kChannels], key[kHeight], key[kWidth]}, &dx);
      plan->bwd_data.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, mem(dpd.diff_dst_desc(), dy_d)},
                                            {DNNL_ARG_WEIGHTS, mem(dpd.weights_desc(), k)},
                                            {DNNL_ARG_DIFF_SRC, mem(dpd.diff_src_desc(), dx)}});
      to_tensor(dpd.diff_src_desc(), dx, grad_input);
    }
    if (ctx->needs_input_grad(1) || ctx->needs_input_grad(2)) {
      const at::Tensor x = converted(plan->fwd_pd.src_desc(), input, wpd.src_desc());
      const at::Tensor dy_w = converted(y, dy, wpd.diff_dst_desc());
      const at::Tensor dk = buffer_for(wpd.diff_weights_desc());
      std::unordered_map<int, memory> args{
          {DNNL_ARG_SRC, mem(wpd.src_desc(), x)},
          {DNNL_ARG_DIFF_DST, mem(wpd.diff_dst_desc(), dy_w)},
          {DNNL_ARG_DIFF_WEIGHTS, mem(wpd.diff_weights_desc(), dk)}};
      if (key[kBias] != 0) {
        grad_bias = at::empty({key[kOutChannels]}, at::TensorOptions(at::kFloat));
        args.emplace(DNNL_ARG_DIFF_BIAS, mem(wpd.diff_bias_desc(), grad_bias));
      }
      plan->bwd_weights.execute(cpu_stream(), args);
      grad_kernel = at::empty_like(kernel);
      reorder(wpd.diff_weights_desc(), dk.data_ptr(), desc_of(grad_kernel), grad_kernel.data_ptr());
    }
    return {grad_input, grad_kernel, grad_bias, at::Tensor(), at::Tensor()};
  }
};

bool training_call(const at::Tensor& input, const at::Tensor& kernel, const at::Tensor& bias) {
  return at::GradMode::is_enabled() && (input.requires_grad() || kernel.requires_grad() ||
                                        (bias.defined() && bias.requires_grad()));
}

}  // namespace

namespace onednn {

bool winograd_present() {
  static const bool present = [] {
    try {
      return build_plan(make_key({1, 16, 8, 8}, 16, ConvPadding{}, true, true, true,
                                 Kind::kWinograd)) != nullptr;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return present;
}

}  // namespace onednn

namespace {

/// The key of this call; all zeros (kind kNone) where it does not apply.
Key key_for(const at::Tensor& input,
            const at::Tensor& kernel,
            const at::Tensor& bias,
            const ConvPadding& pad,
            bool relu) {
  const Kind kind = kind_for(input, kernel);
  // oneDNN 2.6's Winograd backward-data pass gives wrong input gradients
  // with uneven padding (tests/test_onednn.cpp); uneven padding is
  // left to libtorch for both kinds. A 3x3 stride-1 "same" convolution pads
  // evenly, so this costs nothing here.
  if (kind == Kind::kNone || pad.top != pad.bottom || pad.left != pad.right ||
      (kind == Kind::kWinograd && winograd_kernels() != WinogradKernels::kOnednn)) {
    return Key{};
  }
  return make_key(input.sizes(), kernel.size(0), pad, relu, bias.defined(),
                  training_call(input, kernel, bias), kind);
}

}  // namespace

namespace onednn {

bool conv_supported(const at::Tensor& input, const at::Tensor& kernel, const ConvPadding& pad) {
  const Key key = key_for(input, kernel, at::Tensor(), pad, true);
  return static_cast<Kind>(key[kKind]) != Kind::kNone && plan_for(key) != nullptr;
}

at::Tensor try_conv2d(const at::Tensor& input,
                      const at::Tensor& kernel,
                      const at::Tensor& bias,
                      const ConvPadding& pad,
                      bool relu) {
  const Key key = key_for(input, kernel, bias, pad, relu);
  const std::shared_ptr<Plan> plan =
      static_cast<Kind>(key[kKind]) == Kind::kNone ? nullptr : plan_for(key);
  if (plan == nullptr) {
    return at::Tensor();
  }
  if (key[kTraining] != 0) {
    // Function::apply takes defined tensors only: an empty one stands for
    // "no bias" (key[kBias] says which).
    return OnednnConvFunction::apply(input, kernel, bias.defined() ? bias : at::empty({0}), key,
                                     plan);
  }
  const at::NoGradGuard no_grad;
  return run_forward(*plan, input, kernel, bias, key[kBias] != 0, nullptr);
}

}  // namespace onednn

}  // namespace mnist

#endif  // MNIST_WITH_ONEDNN
