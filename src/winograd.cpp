// Winograd convolutions through oneDNN (see winograd.hpp). Tensors stay
// libtorch's: each call reorders the input into the blocked layout the
// Winograd kernels read (nChw16c) and the result back to channels-last,
// which costs a few percent of the convolution it replaces.
#include "mnist/winograd.hpp"

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/autograd.h>
#include <torch/version.h>

#include "mnist/error.hpp"

#ifdef MNIST_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace mnist {

namespace {

std::atomic<bool> g_enabled{true};

}  // namespace

void set_winograd_enabled(bool on) { g_enabled = on; }
bool winograd_enabled() { return g_enabled; }

#ifdef MNIST_WITH_ONEDNN

namespace {

using dnnl::memory;
using Dims = memory::dims;

bool autocast_on() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(at::kCPU);
#else
  return at::autocast::is_cpu_enabled();
#endif
}

/// The checks that need no oneDNN: dtype, device, shapes.
bool plain_checks(const at::Tensor& input, const at::Tensor& kernel) {
  return input.defined() && kernel.defined() && input.device().is_cpu() &&
         input.scalar_type() == at::kFloat && kernel.scalar_type() == at::kFloat &&
         input.dim() == 4 && kernel.dim() == 4 && kernel.size(1) == input.size(1) &&
         kernel.size(2) == 3 && kernel.size(3) == 3 && input.size(1) % 16 == 0 &&
         kernel.size(0) % 16 == 0 && !autocast_on();
}


const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

/// A convolution's shape: N, C, H, W, O, padding (t, b, l, r), relu, bias,
/// training.
using Key = std::array<int64_t, 12>;

/// oneDNN's primitives for one shape: forward, and for training the two
/// backward passes (data and weights).
struct Plan {
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::convolution_backward_weights bwd_weights;
};

Key make_key(at::IntArrayRef in, int64_t out_channels, const ConvPadding& pad, bool relu,
             bool bias, bool training) {
  return {in[0], in[1], in[2], in[3], out_channels, pad.top, pad.bottom, pad.left, pad.right,
          relu ? 1 : 0, bias ? 1 : 0, training ? 1 : 0};
}

/// Builds the primitives for `key`, or returns null where oneDNN has no
/// Winograd kernel for it.
std::shared_ptr<Plan> build_plan(const Key& key) {
  const auto f32 = memory::data_type::f32;
  const auto any = memory::format_tag::any;
  const int64_t n = key[0], c = key[1], h = key[2], w = key[3], o = key[4];
  const int64_t oh = h + key[5] + key[6] - 2;
  const int64_t ow = w + key[7] + key[8] - 2;
  const bool relu = key[9] != 0, bias = key[10] != 0, training = key[11] != 0;
  if (oh < 1 || ow < 1) {
    return nullptr;
  }
  const memory::desc src({n, c, h, w}, f32, any);
  const memory::desc wei({o, c, 3, 3}, f32, any);
  const memory::desc bia = bias ? memory::desc({o}, f32, memory::format_tag::a) : memory::desc();
  const memory::desc dst({n, o, oh, ow}, f32, any);
  const Dims strides{1, 1}, pad_l{key[5], key[7]}, pad_r{key[6], key[8]};
  const auto alg = dnnl::algorithm::convolution_winograd;
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0F, dnnl::algorithm::eltwise_relu, 0.0F, 0.0F);
    attr.set_post_ops(ops);
  }
  auto plan = std::make_shared<Plan>();
  try {
    // forward_training also for inference: its kernels read the weights
    // in a plain blocked layout; forward_inference's want a Winograd-domain
    // layout that oneDNN cannot reorder channels-last weights into.
    const auto prop = dnnl::prop_kind::forward_training;
    plan->fwd_pd = dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(prop, alg, src, wei, bia, dst, strides, pad_l, pad_r),
        attr, cpu_engine());
    plan->fwd = dnnl::convolution_forward(plan->fwd_pd);
    if (training) {
      plan->bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(
          dnnl::convolution_backward_data::desc(alg, src, wei, dst, strides, pad_l, pad_r),
          cpu_engine(), plan->fwd_pd);
      plan->bwd_data = dnnl::convolution_backward_data(plan->bwd_data_pd);
      plan->bwd_weights_pd = dnnl::convolution_backward_weights::primitive_desc(
          dnnl::convolution_backward_weights::desc(alg, src, wei, bia, dst, strides, pad_l,
                                                   pad_r),
          cpu_engine(), plan->fwd_pd);
      plan->bwd_weights = dnnl::convolution_backward_weights(plan->bwd_weights_pd);
    }
  } catch (const dnnl::error&) {
    return nullptr;  // no Winograd kernel for this shape (or this CPU)
  }
  return plan;
}

/// The plan for `key` (built once; null where unsupported).
std::shared_ptr<Plan> plan_for(const Key& key) {
  static std::mutex mutex;
  static std::map<Key, std::shared_ptr<Plan>> plans;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto found = plans.find(key);
  if (found != plans.end()) {
    return found->second;
  }
  return plans[key] = build_plan(key);
}

/// A tensor's layout as oneDNN describes it (its sizes and strides).
memory::desc desc_of(const at::Tensor& t) {
  return memory::desc(Dims(t.sizes().begin(), t.sizes().end()), memory::data_type::f32,
                      Dims(t.strides().begin(), t.strides().end()));
}

void reorder(const memory::desc& from, const void* from_data, const memory::desc& to,
             void* to_data) {
  const memory src(from, cpu_engine(), const_cast<void*>(from_data));
  const memory dst(to, cpu_engine(), to_data);
  dnnl::reorder(src, dst).execute(cpu_stream(), const_cast<memory&>(src),
                                  const_cast<memory&>(dst));
}

/// `t`'s data in layout `want`: `t` itself if it already has it, else a
/// reordered copy (a flat buffer of want's size).
at::Tensor in_layout(const at::Tensor& t, const memory::desc& want) {
  const memory::desc have = desc_of(t);
  if (have == want) {
    return t;
  }
  at::Tensor out = at::empty({static_cast<int64_t>(want.get_size() / sizeof(float))},
                             t.options());
  reorder(have, t.data_ptr(), want, out.data_ptr());
  return out;
}

/// A new tensor of `sizes` in `format` holding data that is in layout
/// `have` at `data`.
at::Tensor from_layout(const memory::desc& have, const at::Tensor& data, at::IntArrayRef sizes,
                       at::MemoryFormat format) {
  at::Tensor out = at::empty(sizes, data.options().memory_format(format));
  reorder(have, data.data_ptr(), desc_of(out), out.data_ptr());
  return out;
}

at::Tensor buffer_for(const memory::desc& d, const at::Tensor& like) {
  return at::empty({static_cast<int64_t>(d.get_size() / sizeof(float))}, like.options());
}

memory mem(const memory::desc& d, const at::Tensor& t) {
  return memory(d, cpu_engine(), t.data_ptr());
}

std::vector<int64_t> output_sizes(const at::Tensor& input, const at::Tensor& kernel,
                                  const ConvPadding& pad) {
  return {input.size(0), kernel.size(0), input.size(2) + pad.top + pad.bottom - 2,
          input.size(3) + pad.left + pad.right - 2};
}

/// Forward pass; with `saved_input`, also keeps the input in the layout the
/// backward weights pass reads.
at::Tensor run_forward(const Plan& plan, const at::Tensor& input, const at::Tensor& kernel,
                       const at::Tensor& bias, const ConvPadding& pad,
                       at::Tensor* saved_input) {
  const auto& pd = plan.fwd_pd;
  const at::Tensor x = in_layout(input.contiguous(at::MemoryFormat::ChannelsLast), pd.src_desc());
  const at::Tensor k = in_layout(kernel, pd.weights_desc());
  const at::Tensor y = buffer_for(pd.dst_desc(), input);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mem(pd.src_desc(), x)},
                                       {DNNL_ARG_WEIGHTS, mem(pd.weights_desc(), k)},
                                       {DNNL_ARG_DST, mem(pd.dst_desc(), y)}};
  const at::Tensor b = bias.defined() && bias.numel() > 0 ? bias.contiguous() : at::Tensor();
  if (b.defined()) {
    args.emplace(DNNL_ARG_BIAS, mem(pd.bias_desc(), b));
  }
  plan.fwd.execute(cpu_stream(), args);
  if (saved_input != nullptr) {
    *saved_input = x;
  }
  return from_layout(pd.dst_desc(), y, output_sizes(input, kernel, pad),
                     at::MemoryFormat::ChannelsLast);
}

class WinogradFunction : public torch::autograd::Function<WinogradFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx,
                            const at::Tensor& input,
                            const at::Tensor& kernel,
                            const at::Tensor& bias,
                            const Key& key,
                            const ConvPadding& pad) {
    const std::shared_ptr<Plan> plan = plan_for(key);
    at::Tensor saved_input;
    at::Tensor out = run_forward(*plan, input, kernel, bias, pad, &saved_input);
    const bool relu = key[9] != 0;
    ctx->save_for_backward({kernel, relu ? out : at::Tensor()});
    ctx->saved_data["input"] = saved_input;
    ctx->saved_data["key"] = std::vector<int64_t>(key.begin(), key.end());
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& kernel = saved[0];
    const at::Tensor& out = saved[1];
    const std::vector<int64_t> key_values = ctx->saved_data["key"].toIntVector();
    Key key{};
    std::copy(key_values.begin(), key_values.end(), key.begin());
    const std::shared_ptr<Plan> plan = plan_for(key);
    const at::Tensor input = ctx->saved_data["input"].toTensor();
    // ReLU's gradient first (it was fused into the forward pass).
    const at::Tensor grad = out.defined() ? at::threshold_backward(grads[0], out, 0) : grads[0];

    at::Tensor grad_input, grad_kernel, grad_bias;
    const auto& wpd = plan->bwd_weights_pd;
    const at::Tensor dy = in_layout(grad, wpd.diff_dst_desc());
    if (ctx->needs_input_grad(0)) {
      const auto& dpd = plan->bwd_data_pd;
      const at::Tensor k = in_layout(kernel, dpd.weights_desc());
      const at::Tensor dy_d = dpd.diff_dst_desc() == wpd.diff_dst_desc()
                                  ? dy
                                  : in_layout(grad, dpd.diff_dst_desc());
      const at::Tensor dx = buffer_for(dpd.diff_src_desc(), grad);
      plan->bwd_data.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, mem(dpd.diff_dst_desc(), dy_d)},
                                            {DNNL_ARG_WEIGHTS, mem(dpd.weights_desc(), k)},
                                            {DNNL_ARG_DIFF_SRC, mem(dpd.diff_src_desc(), dx)}});
      grad_input = from_layout(dpd.diff_src_desc(), dx, {key[0], key[1], key[2], key[3]},
                               at::MemoryFormat::ChannelsLast);
    }
    if (ctx->needs_input_grad(1) || ctx->needs_input_grad(2)) {
      const at::Tensor x = wpd.src_desc() == plan->fwd_pd.src_desc()
                               ? input
                               : in_layout(input, wpd.src_desc());  // not seen so far
      const at::Tensor dk = buffer_for(wpd.diff_weights_desc(), grad);
      std::unordered_map<int, memory> args{
          {DNNL_ARG_SRC, mem(wpd.src_desc(), x)},
          {DNNL_ARG_DIFF_DST, mem(wpd.diff_dst_desc(), dy)},
          {DNNL_ARG_DIFF_WEIGHTS, mem(wpd.diff_weights_desc(), dk)}};
      if (key[10] != 0) {
        grad_bias = at::empty({key[4]}, grad.options());
        args.emplace(DNNL_ARG_DIFF_BIAS, mem(wpd.diff_bias_desc(), grad_bias));
      }
      plan->bwd_weights.execute(cpu_stream(), args);
      grad_kernel = at::empty_like(kernel);
      reorder(wpd.diff_weights_desc(), dk.data_ptr(), desc_of(grad_kernel),
              grad_kernel.data_ptr());
    }
    return {grad_input, grad_kernel, grad_bias, at::Tensor(), at::Tensor()};
  }
};

bool training_call(const at::Tensor& input, const at::Tensor& kernel, const at::Tensor& bias) {
  return at::GradMode::is_enabled() &&
         (input.requires_grad() || kernel.requires_grad() ||
          (bias.defined() && bias.requires_grad()));
}

}  // namespace

bool winograd_available() {
  static const bool available = [] {
    try {
      return build_plan(make_key({1, 16, 8, 8}, 16, ConvPadding{}, true, true, true)) != nullptr;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return available;
}

bool winograd_supports(const at::Tensor& input, const at::Tensor& kernel, const ConvPadding& pad) {
  // oneDNN 2.6's Winograd backward-data pass gives wrong input gradients
  // with uneven padding (tests/test_winograd.cpp). A 3x3 stride-1 "same"
  // convolution pads evenly, so this costs nothing here.
  if (pad.top != pad.bottom || pad.left != pad.right) {
    return false;
  }
  if (!winograd_enabled() || !plain_checks(input, kernel) || !winograd_available()) {
    return false;
  }
  // relu, bias and training do not change which kernels exist; ask for the
  // plan this call will use anyway.
  return plan_for(make_key(input.sizes(), kernel.size(0), pad, true, true,
                           at::GradMode::is_enabled())) != nullptr;
}

at::Tensor winograd_conv2d(const at::Tensor& input,
                           const at::Tensor& kernel,
                           const at::Tensor& bias,
                           const ConvPadding& pad,
                           bool relu) {
  if (!plain_checks(input, kernel) || !winograd_available() || pad.top != pad.bottom ||
      pad.left != pad.right) {
    throw ConfigError("winograd_conv2d: unsupported convolution");
  }
  const bool training = training_call(input, kernel, bias);
  const Key key = make_key(input.sizes(), kernel.size(0), pad, relu, bias.defined(), training);
  const std::shared_ptr<Plan> plan = plan_for(key);
  if (plan == nullptr) {
    throw ConfigError("winograd_conv2d: oneDNN has no Winograd kernel for this shape");
  }
  if (training) {
    // Function::apply takes defined tensors only: an empty one stands for
    // "no bias" (key[10] says which).
    return WinogradFunction::apply(input, kernel, bias.defined() ? bias : at::empty({0}), key,
                                   pad);
  }
  const at::NoGradGuard no_grad;
  return run_forward(*plan, input, kernel, bias, pad, nullptr);
}

#else  // no oneDNN headers at build time: libtorch's convolutions only

bool winograd_available() { return false; }

bool winograd_supports(const at::Tensor&, const at::Tensor&, const ConvPadding&) {
  return false;
}

at::Tensor winograd_conv2d(const at::Tensor&,
                           const at::Tensor&,
                           const at::Tensor&,
                           const ConvPadding&,
                           bool) {
  throw ConfigError("this build has no Winograd convolutions (oneDNN's headers were not found)");
}

#endif

}  // namespace mnist
