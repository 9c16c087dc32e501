// Convolutions through oneDNN (see onednn_conv.hpp). Tensors stay
// libtorch's: each Winograd call reorders the input into the blocked layout
// its kernels read (nChw16c) and the result back to channels-last, which
// costs a few percent of the convolution it replaces; the bf16 kernels read
// and write channels-last tensors as they are.
#include "mnist/onednn_conv.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "mnist/device.hpp"
#include "mnist/error.hpp"

#ifdef MNIST_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace mnist {

namespace {

std::atomic<bool> g_enabled{true};

}  // namespace

void set_onednn_conv_enabled(bool on) { g_enabled = on; }
bool onednn_conv_enabled() { return g_enabled; }

#ifdef MNIST_WITH_ONEDNN

namespace {

using dnnl::memory;
using Dims = memory::dims;

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

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
enum KeyField {
  kBatch, kChannels, kHeight, kWidth, kOutChannels,
  kPadTop, kPadBottom, kPadLeft, kPadRight,
  kRelu, kBias, kTraining, kKind, kKeyFields
};
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

Key make_key(at::IntArrayRef in, int64_t out_channels, const ConvPadding& pad, bool relu,
             bool bias, bool training, Kind kind) {
  return {in[0], in[1], in[2], in[3], out_channels, pad.top, pad.bottom, pad.left, pad.right,
          relu ? 1 : 0, bias ? 1 : 0, training ? 1 : 0, static_cast<int64_t>(kind)};
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
        dnnl::convolution_forward::desc(prop, alg, src, wei, bia, dst, strides, pad_l, pad_r),
        attr, cpu_engine());
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
            dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, relu_alg, y, 0.0F,
                                        0.0F),
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

/// The plan for `key`, built by `build` once (null where unsupported); one
/// cache per kind of plan.
template <typename PlanT, typename KeyT>
std::shared_ptr<PlanT> cached_plan(const KeyT& key, std::shared_ptr<PlanT> (*build)(const KeyT&)) {
  static std::mutex mutex;
  static std::map<KeyT, std::shared_ptr<PlanT>> plans;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto found = plans.find(key);
  if (found != plans.end()) {
    return found->second;
  }
  // A run sees a handful of shapes (batch size, the last smaller batch,
  // evaluation batches); a long-lived caller with many more starts over
  // rather than keep every kernel (plans in use stay alive through their
  // shared_ptr).
  constexpr size_t kMaxPlans = 64;
  if (plans.size() >= kMaxPlans) {
    plans.clear();
  }
  return plans[key] = build(key);
}

std::shared_ptr<Plan> plan_for(const Key& key) { return cached_plan(key, &build_plan); }

memory::data_type dnnl_type(at::ScalarType t) {
  return t == at::kBFloat16 ? memory::data_type::bf16 : memory::data_type::f32;
}

at::ScalarType torch_type(const memory::desc& d) {
  return d.data_type() == memory::data_type::bf16 ? at::kBFloat16 : at::kFloat;
}

/// A tensor's layout as oneDNN describes it (its sizes and strides).
memory::desc desc_of(const at::Tensor& t) {
  return memory::desc(Dims(t.sizes().begin(), t.sizes().end()), dnnl_type(t.scalar_type()),
                      Dims(t.strides().begin(), t.strides().end()));
}

void reorder(const memory::desc& from, const void* from_data, const memory::desc& to,
             void* to_data) {
  const memory src(from, cpu_engine(), const_cast<void*>(from_data));
  const memory dst(to, cpu_engine(), to_data);
  dnnl::reorder(src, dst).execute(cpu_stream(), const_cast<memory&>(src),
                                  const_cast<memory&>(dst));
}

/// Memory for a oneDNN layout that no libtorch tensor describes.
at::Tensor buffer_for(const memory::desc& d) {
  return at::empty({static_cast<int64_t>(d.get_size())}, at::TensorOptions(at::kByte));
}

/// `data`, in layout `have`, in layout `want`: itself, or a reordered copy.
at::Tensor converted(const memory::desc& have, const at::Tensor& data, const memory::desc& want) {
  if (have == want) {
    return data;
  }
  at::Tensor out = buffer_for(want);
  reorder(have, data.data_ptr(), want, out.data_ptr());
  return out;
}

/// `t`'s data in layout `want` (type conversions included): `t` itself if
/// it already has it, else a reordered copy.
at::Tensor in_layout(const at::Tensor& t, const memory::desc& want) {
  return converted(desc_of(t), t, want);
}

/// A channels-last tensor of `sizes` that a primitive writes in `layout`:
/// the primitive writes it directly where the layouts agree, else into
/// `*staging`, which to_tensor() then reorders into it.
at::Tensor out_tensor(const memory::desc& layout, at::IntArrayRef sizes, at::Tensor* staging) {
  at::Tensor out = at::empty(
      sizes, at::TensorOptions(torch_type(layout)).memory_format(at::MemoryFormat::ChannelsLast));
  *staging = desc_of(out) == layout ? out : buffer_for(layout);
  return out;
}

void to_tensor(const memory::desc& layout, const at::Tensor& staging, at::Tensor& out) {
  if (!staging.is_same(out)) {
    reorder(layout, staging.data_ptr(), desc_of(out), out.data_ptr());
  }
}

memory mem(const memory::desc& d, const at::Tensor& t) {
  return memory(d, cpu_engine(), t.data_ptr());
}

/// Forward pass. With `saved`, also keeps what the backward passes read:
/// the input, and the output in oneDNN's layout (for ReLU's gradient).
struct Saved {
  at::Tensor input;
  at::Tensor output;
};
at::Tensor run_forward(const Plan& plan, const at::Tensor& input, const at::Tensor& kernel,
                       const at::Tensor& bias, bool has_bias, Saved* saved) {
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
    ctx->saved_data["key"] = std::vector<int64_t>(key.begin(), key.end());
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& kernel = saved[0];
    const at::Tensor& output = saved[1];
    const std::vector<int64_t> key_values = ctx->saved_data["key"].toIntVector();
    Key key{};
    std::copy(key_values.begin(), key_values.end(), key.begin());
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

bool onednn_built() { return true; }

bool winograd_available() {
  static const bool available = [] {
    try {
      return build_plan(make_key({1, 16, 8, 8}, 16, ConvPadding{}, true, true, true,
                                 Kind::kWinograd)) != nullptr;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return available;
}

namespace {

/// The key of this call; all zeros (kind kNone) where it does not apply.
Key key_for(const at::Tensor& input, const at::Tensor& kernel, const at::Tensor& bias,
            const ConvPadding& pad, bool relu) {
  const Kind kind = onednn_conv_enabled() ? kind_for(input, kernel) : Kind::kNone;
  // oneDNN 2.6's Winograd backward-data pass gives wrong input gradients
  // with uneven padding (tests/test_onednn_conv.cpp); uneven padding is
  // left to libtorch for both kinds. A 3x3 stride-1 "same" convolution pads
  // evenly, so this costs nothing here.
  if (kind == Kind::kNone || pad.top != pad.bottom || pad.left != pad.right ||
      (kind == Kind::kWinograd && !winograd_available())) {
    return Key{};
  }
  return make_key(input.sizes(), kernel.size(0), pad, relu, bias.defined(),
                  training_call(input, kernel, bias), kind);
}

}  // namespace

bool onednn_conv_supports(const at::Tensor& input,
                          const at::Tensor& kernel,
                          const ConvPadding& pad) {
  const Key key = key_for(input, kernel, at::Tensor(), pad, true);
  return static_cast<Kind>(key[kKind]) != Kind::kNone && plan_for(key) != nullptr;
}

at::Tensor try_onednn_conv2d(const at::Tensor& input,
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

at::Tensor onednn_conv2d(const at::Tensor& input,
                         const at::Tensor& kernel,
                         const at::Tensor& bias,
                         const ConvPadding& pad,
                         bool relu) {
  at::Tensor out = try_onednn_conv2d(input, kernel, bias, pad, relu);
  if (!out.defined()) {
    throw ConfigError("onednn_conv2d: unsupported convolution");
  }
  return out;
}

namespace {

/// A max pooling's shape and options, indexed by PoolField.
enum PoolField {
  kPoolType, kPoolBatch, kPoolChannels, kPoolHeight, kPoolWidth,
  kPoolKernelH, kPoolKernelW, kPoolStrideH, kPoolStrideW,
  kPoolPadTop, kPoolPadBottom, kPoolPadLeft, kPoolPadRight, kPoolTraining, kPoolFields
};
using PoolKey = std::array<int64_t, kPoolFields>;

/// oneDNN's max pooling for one shape, on channels-last tensors; for
/// training, the forward pass also writes a workspace (which cell of each
/// window won) that the backward pass reads.
struct PoolPlan {
  dnnl::pooling_forward::primitive_desc fwd_pd;
  dnnl::pooling_forward fwd;
  dnnl::pooling_backward bwd;
};

std::shared_ptr<PoolPlan> build_pool_plan(const PoolKey& key) {
  const int64_t h = key[kPoolHeight] + key[kPoolPadTop] + key[kPoolPadBottom];
  const int64_t w = key[kPoolWidth] + key[kPoolPadLeft] + key[kPoolPadRight];
  if (h < key[kPoolKernelH] || w < key[kPoolKernelW]) {
    return nullptr;
  }
  const Dims kernel{key[kPoolKernelH], key[kPoolKernelW]};
  const Dims strides{key[kPoolStrideH], key[kPoolStrideW]};
  const Dims pad_l{key[kPoolPadTop], key[kPoolPadLeft]};
  const Dims pad_r{key[kPoolPadBottom], key[kPoolPadRight]};
  const memory::data_type type = dnnl_type(static_cast<at::ScalarType>(key[kPoolType]));
  const auto nhwc = memory::format_tag::nhwc;
  const memory::desc src({key[kPoolBatch], key[kPoolChannels], key[kPoolHeight], key[kPoolWidth]},
                         type, nhwc);
  const memory::desc dst({key[kPoolBatch], key[kPoolChannels], (h - kernel[0]) / strides[0] + 1,
                          (w - kernel[1]) / strides[1] + 1},
                         type, nhwc);
  auto plan = std::make_shared<PoolPlan>();
  const bool training = key[kPoolTraining] != 0;
  try {
    // Padded cells never win (as if they held -infinity), as in TF's "same".
    const auto alg = dnnl::algorithm::pooling_max;
    plan->fwd_pd = dnnl::pooling_forward::primitive_desc(
        dnnl::pooling_forward::desc(training ? dnnl::prop_kind::forward_training
                                             : dnnl::prop_kind::forward_inference,
                                    alg, src, dst, strides, kernel, pad_l, pad_r),
        cpu_engine());
    plan->fwd = dnnl::pooling_forward(plan->fwd_pd);
    if (training) {
      plan->bwd = dnnl::pooling_backward(dnnl::pooling_backward::primitive_desc(
          dnnl::pooling_backward::desc(alg, src, dst, strides, kernel, pad_l, pad_r),
          cpu_engine(), plan->fwd_pd));
    }
  } catch (const dnnl::error&) {
    return nullptr;
  }
  return plan;
}

std::shared_ptr<PoolPlan> pool_plan_for(const PoolKey& key) {
  return cached_plan(key, &build_pool_plan);
}

/// Runs the forward pass; with `workspace`, allocates and fills it.
at::Tensor run_pool_forward(const PoolPlan& plan, const at::Tensor& input,
                            at::Tensor* workspace) {
  const at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const memory::desc& src = plan.fwd_pd.src_desc();
  const memory::desc& dst = plan.fwd_pd.dst_desc();
  const memory::dims dims = dst.dims();
  at::Tensor out = at::empty(at::IntArrayRef(dims), x.options().memory_format(
                                                        at::MemoryFormat::ChannelsLast));
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mem(src, x)},
                                       {DNNL_ARG_DST, mem(dst, out)}};
  if (workspace != nullptr) {
    *workspace = buffer_for(plan.fwd_pd.workspace_desc());
    args.emplace(DNNL_ARG_WORKSPACE, mem(plan.fwd_pd.workspace_desc(), *workspace));
  }
  plan.fwd.execute(cpu_stream(), args);
  return out;
}

class OnednnMaxPoolFunction : public torch::autograd::Function<OnednnMaxPoolFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            const PoolKey& key, const std::shared_ptr<PoolPlan>& plan) {
    at::Tensor workspace;
    at::Tensor out = run_pool_forward(*plan, input, &workspace);
    ctx->saved_data["workspace"] = workspace;
    ctx->saved_data["key"] = std::vector<int64_t>(key.begin(), key.end());
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const std::vector<int64_t> key_values = ctx->saved_data["key"].toIntVector();
    PoolKey key{};
    std::copy(key_values.begin(), key_values.end(), key.begin());
    const std::shared_ptr<PoolPlan> plan = pool_plan_for(key);
    const at::Tensor workspace = ctx->saved_data["workspace"].toTensor();
    const memory::desc& src = plan->fwd_pd.src_desc();
    const memory::desc& dst = plan->fwd_pd.dst_desc();
    const at::ScalarType type = torch_type(src);
    const at::Tensor dy = grads[0].to(type).contiguous(at::MemoryFormat::ChannelsLast);
    const memory::dims dims = src.dims();
    at::Tensor dx = at::empty(at::IntArrayRef(dims), dy.options().memory_format(
                                                         at::MemoryFormat::ChannelsLast));
    plan->bwd.execute(cpu_stream(),
                      {{DNNL_ARG_DIFF_DST, mem(dst, dy)},
                       {DNNL_ARG_DIFF_SRC, mem(src, dx)},
                       {DNNL_ARG_WORKSPACE, mem(plan->fwd_pd.workspace_desc(), workspace)}});
    return {dx, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor try_onednn_max_pool2d(const at::Tensor& input,
                                 at::IntArrayRef kernel,
                                 at::IntArrayRef strides,
                                 const ConvPadding& pad) {
  const at::ScalarType type = input.defined() ? input.scalar_type() : at::kFloat;
  if (!onednn_conv_enabled() || !input.defined() || !input.device().is_cpu() ||
      input.dim() != 4 || (type != at::kFloat && type != at::kBFloat16) || kernel.size() != 2 ||
      strides.size() != 2 || kernel[0] < 1 || kernel[1] < 1 || strides[0] < 1 ||
      strides[1] < 1 || pad.top < 0 || pad.bottom < 0 || pad.left < 0 || pad.right < 0 ||
      pad.top >= kernel[0] || pad.bottom >= kernel[0] || pad.left >= kernel[1] ||
      pad.right >= kernel[1]) {
    return at::Tensor();
  }
  const bool training = at::GradMode::is_enabled() && input.requires_grad();
  const PoolKey key{static_cast<int64_t>(type), input.size(0), input.size(1), input.size(2),
                    input.size(3), kernel[0], kernel[1], strides[0], strides[1],
                    pad.top, pad.bottom, pad.left, pad.right, training ? 1 : 0};
  const std::shared_ptr<PoolPlan> plan = pool_plan_for(key);
  if (plan == nullptr) {
    return at::Tensor();
  }
  if (training) {
    return OnednnMaxPoolFunction::apply(input, key, plan);
  }
  const at::NoGradGuard no_grad;
  return run_pool_forward(*plan, input, nullptr);
}

#else  // no oneDNN headers at build time: libtorch's convolutions only

bool onednn_built() { return false; }

bool winograd_available() { return false; }

bool onednn_conv_supports(const at::Tensor&, const at::Tensor&, const ConvPadding&) {
  return false;
}

at::Tensor try_onednn_conv2d(const at::Tensor&,
                             const at::Tensor&,
                             const at::Tensor&,
                             const ConvPadding&,
                             bool) {
  return at::Tensor();
}

at::Tensor onednn_conv2d(const at::Tensor&,
                         const at::Tensor&,
                         const at::Tensor&,
                         const ConvPadding&,
                         bool) {
  throw ConfigError("this build calls no oneDNN convolutions (its headers were not found)");
}

at::Tensor try_onednn_max_pool2d(const at::Tensor&,
                                 at::IntArrayRef,
                                 at::IntArrayRef,
                                 const ConvPadding&) {
  return at::Tensor();
}

#endif

}  // namespace mnist
