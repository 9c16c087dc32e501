// Max pooling through oneDNN (see onednn.hpp): channels-last tensors as they
// are, and for training a workspace in which the forward pass records which
// cell of each window won, read by the backward pass.
#include "mnist/onednn.hpp"

#ifdef MNIST_WITH_ONEDNN

#include <algorithm>
#include <array>
#include <memory>
#include <unordered_map>
#include <vector>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "onednn/common.hpp"

namespace mnist {

namespace {

using namespace onednn;  // NOLINT(google-build-using-namespace): this module's own helpers

/// A max pooling's shape and options, indexed by PoolField.
// (The fields read best as a list.)
// clang-format off
enum PoolField {
  kPoolType, kPoolBatch, kPoolChannels, kPoolHeight, kPoolWidth, kPoolKernelH, kPoolKernelW,
  kPoolStrideH, kPoolStrideW, kPoolPadTop, kPoolPadBottom, kPoolPadLeft, kPoolPadRight,
  kPoolTraining, kPoolFields
};
// clang-format on
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
        dnnl::pooling_forward::desc(
            training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, alg,
            src, dst, strides, kernel, pad_l, pad_r),
        cpu_engine());
    plan->fwd = dnnl::pooling_forward(plan->fwd_pd);
    if (training) {
      plan->bwd = dnnl::pooling_backward(dnnl::pooling_backward::primitive_desc(
          dnnl::pooling_backward::desc(alg, src, dst, strides, kernel, pad_l, pad_r), cpu_engine(),
          plan->fwd_pd));
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
at::Tensor run_pool_forward(const PoolPlan& plan, const at::Tensor& input, at::Tensor* workspace) {
  const at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const memory::desc& src = plan.fwd_pd.src_desc();
  const memory::desc& dst = plan.fwd_pd.dst_desc();
  const memory::dims dims = dst.dims();
  at::Tensor out =
      at::empty(at::IntArrayRef(dims), x.options().memory_format(at::MemoryFormat::ChannelsLast));
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mem(src, x)}, {DNNL_ARG_DST, mem(dst, out)}};
  if (workspace != nullptr) {
    *workspace = buffer_for(plan.fwd_pd.workspace_desc());
    args.emplace(DNNL_ARG_WORKSPACE, mem(plan.fwd_pd.workspace_desc(), *workspace));
  }
  plan.fwd.execute(cpu_stream(), args);
  return out;
}

class OnednnMaxPoolFunction : public torch::autograd::Function<OnednnMaxPoolFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx,
                            const at::Tensor& input,
                            const PoolKey& key,
                            const std::shared_ptr<PoolPlan>& plan) {
    at::Tensor workspace;
    at::Tensor out = run_pool_forward(*plan, input, &workspace);
    ctx->saved_data["workspace"] = workspace;
    save_key(ctx, key);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const PoolKey key = saved_key<PoolKey>(ctx);
    const std::shared_ptr<PoolPlan> plan = pool_plan_for(key);
    const at::Tensor workspace = ctx->saved_data["workspace"].toTensor();
    const memory::desc& src = plan->fwd_pd.src_desc();
    const memory::desc& dst = plan->fwd_pd.dst_desc();
    const at::ScalarType type = torch_type(src);
    const at::Tensor dy = grads[0].to(type).contiguous(at::MemoryFormat::ChannelsLast);
    const memory::dims dims = src.dims();
    at::Tensor dx = at::empty(at::IntArrayRef(dims),
                              dy.options().memory_format(at::MemoryFormat::ChannelsLast));
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
  if (!onednn_enabled() || !onednn_pooling() || !input.defined() || !input.device().is_cpu() ||
      input.dim() != 4 || (type != at::kFloat && type != at::kBFloat16) || kernel.size() != 2 ||
      strides.size() != 2 || kernel[0] < 1 || kernel[1] < 1 || strides[0] < 1 || strides[1] < 1 ||
      pad.top < 0 || pad.bottom < 0 || pad.left < 0 || pad.right < 0 || pad.top >= kernel[0] ||
      pad.bottom >= kernel[0] || pad.left >= kernel[1] || pad.right >= kernel[1]) {
    return at::Tensor();
  }
  const bool training = at::GradMode::is_enabled() && input.requires_grad();
  const PoolKey key{static_cast<int64_t>(type),
                    input.size(0),
                    input.size(1),
                    input.size(2),
                    input.size(3),
                    kernel[0],
                    kernel[1],
                    strides[0],
                    strides[1],
                    pad.top,
                    pad.bottom,
                    pad.left,
                    pad.right,
                    training ? 1 : 0};
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

}  // namespace mnist

#endif  // MNIST_WITH_ONEDNN
