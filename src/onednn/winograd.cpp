// Winograd F(4x4, 3x3) (see winograd.hpp): the kernel's transforms, the
// autograd function over the passes of winograd_kernels.cpp, and the checks
// of when it applies.
#include "onednn/winograd.hpp"

#include <cstdint>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include "onednn/winograd_kernels.hpp"

namespace mnist::winograd {

namespace {

// ---- Kernel transforms -------------------------------------------------------

constexpr float kG[6][3] = {{1.0F / 4, 0.0F, 0.0F},
                            {-1.0F / 6, -1.0F / 6, -1.0F / 6},
                            {-1.0F / 6, 1.0F / 6, -1.0F / 6},
                            {1.0F / 24, 1.0F / 12, 1.0F / 6},
                            {1.0F / 24, -1.0F / 12, 1.0F / 6},
                            {0.0F, 0.0F, 1.0F}};

/// U = G g G^T of every (o, c) kernel, as [36][C][O] (`o_inner`) or
/// [36][O][C]. (Small loops: ATen's batched matrix products of 3x3 matrices
/// cost milliseconds in call overhead.)
at::Tensor transformed_kernel(const at::Tensor& kernel, bool o_inner) {
  const at::Tensor k = kernel.contiguous();  // [O][C][3][3]
  const int64_t o_count = k.size(0), c_count = k.size(1);
  at::Tensor u = at::empty({kPoints, o_inner ? c_count : o_count, o_inner ? o_count : c_count},
                           at::TensorOptions(at::kFloat));
  const float* g = k.data_ptr<float>();
  float* out = u.data_ptr<float>();
  at::parallel_for(0, o_count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      for (int64_t c = 0; c < c_count; ++c) {
        const float* w = g + (o * c_count + c) * 9;
        float gw[6][3];  // G g
        for (int i = 0; i < 6; ++i) {
          for (int b = 0; b < 3; ++b) {
            gw[i][b] = kG[i][0] * w[b] + kG[i][1] * w[3 + b] + kG[i][2] * w[6 + b];
          }
        }
        for (int i = 0; i < 6; ++i) {
          for (int j = 0; j < 6; ++j) {
            const float value = gw[i][0] * kG[j][0] + gw[i][1] * kG[j][1] + gw[i][2] * kG[j][2];
            const int64_t at_point = (i * 6 + j) * c_count * o_count;
            out[at_point + (o_inner ? c * o_count + o : o * c_count + c)] = value;
          }
        }
      }
    }
  });
  return u;
}

/// The kernel's gradient G^T dU G, from du [36][C][O], into `kernel`'s
/// sizes and strides.
at::Tensor kernel_gradient(const at::Tensor& du, const at::Tensor& kernel) {
  const int64_t o_count = kernel.size(0), c_count = kernel.size(1);
  at::Tensor dg = at::empty({o_count, c_count, 3, 3}, at::TensorOptions(at::kFloat));
  const float* d = du.data_ptr<float>();
  float* out = dg.data_ptr<float>();
  at::parallel_for(0, o_count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      for (int64_t c = 0; c < c_count; ++c) {
        float t[3][6];  // G^T dU
        for (int a = 0; a < 3; ++a) {
          for (int j = 0; j < 6; ++j) {
            float sum = 0.0F;
            for (int i = 0; i < 6; ++i) {
              sum += kG[i][a] * d[((i * 6 + j) * c_count + c) * o_count + o];
            }
            t[a][j] = sum;
          }
        }
        float* w = out + (o * c_count + c) * 9;
        for (int a = 0; a < 3; ++a) {
          for (int b = 0; b < 3; ++b) {
            float sum = 0.0F;
            for (int j = 0; j < 6; ++j) {
              sum += t[a][j] * kG[j][b];
            }
            w[a * 3 + b] = sum;
          }
        }
      }
    }
  });
  return at::empty_like(kernel).copy_(dg);
}

Shape shape_of(const at::Tensor& input, const at::Tensor& kernel, int64_t pad_h, int64_t pad_w) {
  return {input.size(0), input.size(1), input.size(2), input.size(3), kernel.size(0), pad_h, pad_w};
}

const float* data_or_null(const at::Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data_ptr<float>() : nullptr;
}

at::Tensor run_forward(const Shape& s,
                       const at::Tensor& input,
                       const at::Tensor& kernel,
                       const at::Tensor& bias,
                       bool relu) {
  const at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  // [36][C][O]: each point's matrix for M = V U.
  const at::Tensor u = transformed_kernel(kernel, /*o_inner=*/true);
  const at::Tensor b = bias.defined() && bias.numel() > 0 ? bias.contiguous() : at::Tensor();
  at::Tensor y =
      at::empty({s.n, s.o, s.oh(), s.ow()},
                at::TensorOptions(at::kFloat).memory_format(at::MemoryFormat::ChannelsLast));
  forward_pass(s, x.data_ptr<float>(), u.data_ptr<float>(), data_or_null(b), relu,
               y.data_ptr<float>());
  return y;
}

class WinogradFunction : public torch::autograd::Function<WinogradFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx,
                            const at::Tensor& input,
                            const at::Tensor& kernel,
                            const at::Tensor& bias,
                            int64_t pad_h,
                            int64_t pad_w,
                            bool relu) {
    const Shape s = shape_of(input, kernel, pad_h, pad_w);
    at::Tensor y = run_forward(s, input, kernel, bias, relu);
    ctx->save_for_backward({input, kernel, relu ? y : at::Tensor()});
    ctx->saved_data["pad_h"] = pad_h;
    ctx->saved_data["pad_w"] = pad_w;
    ctx->saved_data["bias"] = bias.numel() > 0;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& input = saved[0];
    const at::Tensor& kernel = saved[1];
    const at::Tensor& y = saved[2];
    const Shape s =
        shape_of(input, kernel, ctx->saved_data["pad_h"].toInt(), ctx->saved_data["pad_w"].toInt());
    const bool has_bias = ctx->saved_data["bias"].toBool();
    const at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor dy = grads[0].to(at::kFloat).contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor yc = y.defined() ? y.contiguous(at::MemoryFormat::ChannelsLast) : at::Tensor();
    // [36][O][C]: each point's matrix for dV = dM U^T.
    const at::Tensor u_t = transformed_kernel(kernel, /*o_inner=*/false);
    at::Tensor dx, du, dbias;
    const auto opts = at::TensorOptions(at::kFloat);
    if (ctx->needs_input_grad(0)) {
      // (at::zeros would drop the memory format)
      dx = at::empty({s.n, s.c, s.h, s.w}, opts.memory_format(at::MemoryFormat::ChannelsLast))
               .zero_();
    }
    if (ctx->needs_input_grad(1)) {
      du = at::empty({kPoints, s.c, s.o}, opts);
    }
    if (has_bias && ctx->needs_input_grad(2)) {
      dbias = at::empty({s.o}, opts);
    }
    backward_pass(s, x.data_ptr<float>(), u_t.data_ptr<float>(), data_or_null(yc),
                  dy.data_ptr<float>(), dx.defined() ? dx.data_ptr<float>() : nullptr,
                  du.defined() ? du.data_ptr<float>() : nullptr,
                  dbias.defined() ? dbias.data_ptr<float>() : nullptr);
    const at::Tensor dkernel = du.defined() ? kernel_gradient(du, kernel) : at::Tensor();
    return {dx, dkernel, dbias, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool cpu_supported() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported;
}

bool applies(const at::Tensor& input, const at::Tensor& kernel, int64_t pad_h, int64_t pad_w) {
  return input.defined() && kernel.defined() && input.device().is_cpu() &&
         input.scalar_type() == at::kFloat && kernel.scalar_type() == at::kFloat &&
         input.dim() == 4 && kernel.dim() == 4 && kernel.size(1) == input.size(1) &&
         kernel.size(2) == 3 && kernel.size(3) == 3 && input.size(1) % 16 == 0 &&
         kernel.size(0) % 16 == 0 && pad_h >= 0 && pad_w >= 0 && pad_h <= 2 && pad_w <= 2 &&
         input.size(2) + 2 * pad_h >= 3 && input.size(3) + 2 * pad_w >= 3 && input.size(0) > 0;
}

at::Tensor conv2d(const at::Tensor& input,
                  const at::Tensor& kernel,
                  const at::Tensor& bias,
                  int64_t pad_h,
                  int64_t pad_w,
                  bool relu) {
  const bool training =
      at::GradMode::is_enabled() &&
      (input.requires_grad() || kernel.requires_grad() || (bias.defined() && bias.requires_grad()));
  if (training) {
    // Function::apply takes defined tensors only: an empty one stands for no bias.
    return WinogradFunction::apply(input, kernel, bias.defined() ? bias : at::empty({0}), pad_h,
                                   pad_w, relu);
  }
  const at::NoGradGuard no_grad;
  return run_forward(shape_of(input, kernel, pad_h, pad_w), input, kernel, bias, relu);
}

}  // namespace mnist::winograd
