// oneDNN's engine, stream and tensor/descriptor conversions (common.hpp), the
// process-wide switch, and what a build without oneDNN's headers does.
#include "mnist/onednn.hpp"

#include <atomic>
#include <string>
#include <utility>

#include "mnist/error.hpp"

#include "mnist/device.hpp"
#include "onednn/winograd.hpp"

#include "onednn/conv.hpp"

#ifdef MNIST_WITH_ONEDNN
#include "onednn/common.hpp"
#endif

namespace mnist {

namespace {

std::atomic<bool> g_enabled{true};
std::atomic<int> g_winograd{-1};  // a WinogradKernels, or -1: the default
std::atomic<int> g_pooling{-1};   // 0 or 1, or -1: the default

/// Whether our own Winograd kernels take this convolution.
bool own_winograd_takes(const at::Tensor& input, const at::Tensor& kernel, const ConvPadding& pad) {
  return onednn_enabled() && winograd_kernels() == WinogradKernels::kOwnAvx2 &&
         !cpu_autocast_type() && pad.top == pad.bottom && pad.left == pad.right &&
         winograd::applies(input, kernel, pad.top, pad.left);
}

}  // namespace

void set_onednn_enabled(bool on) { g_enabled = on; }
bool onednn_enabled() { return g_enabled; }

bool winograd_available() { return onednn::winograd_present(); }

bool own_winograd_available() { return winograd::cpu_supported(); }

WinogradKernels winograd_kernels() {
  const int chosen = g_winograd;
  if (chosen >= 0) {
    return static_cast<WinogradKernels>(chosen);
  }
  return winograd_available()       ? WinogradKernels::kOnednn
         : own_winograd_available() ? WinogradKernels::kOwnAvx2
                                    : WinogradKernels::kNone;
}

void set_winograd_kernels(WinogradKernels kernels) { g_winograd = static_cast<int>(kernels); }

void reset_winograd_kernels() { g_winograd = -1; }

const char* winograd_kernels_name(WinogradKernels kernels) {
  // In WinogradKernels' order.
  static constexpr const char* kNames[] = {"none (direct convolutions)", "oneDNN's (AVX-512)",
                                           "mnist-train's own (AVX2)"};
  return kNames[static_cast<size_t>(kernels)];
}

bool onednn_pooling() {
  const int chosen = g_pooling;
  if (chosen >= 0) {
    return chosen == 1;
  }
#ifdef MNIST_WITH_ONEDNN
  static const bool avx512 = static_cast<int>(dnnl::get_effective_cpu_isa()) >=
                             static_cast<int>(dnnl::cpu_isa::avx512_core);
  return avx512;
#else
  return false;
#endif
}

void set_onednn_pooling(bool on) { g_pooling = on ? 1 : 0; }

void reset_onednn_pooling() { g_pooling = -1; }

std::string describe_cpu_kernels(bool bf16) {
  std::string convolutions;
  if (!onednn_enabled()) {
    convolutions = "libtorch's";
  } else if (bf16) {
    convolutions = onednn_built() ? "oneDNN bf16 with float32 weight gradients (3x3, stride 1), "
                                    "else libtorch's"
                                  : "libtorch's (this build lacks oneDNN's headers)";
  } else if (winograd_kernels() == WinogradKernels::kNone) {
    convolutions = "libtorch's (no Winograd kernels for this build or CPU)";
  } else {
    convolutions = std::string(winograd_kernels() == WinogradKernels::kOnednn
                                   ? "oneDNN Winograd"
                                   : "mnist-train's own Winograd (AVX2)") +
                   " where the layer allows (3x3, stride 1, channels a multiple of 16), else "
                   "libtorch's";
  }
  const bool pooling =
      onednn_enabled() && onednn_built() && onednn_pooling() && (!bf16 || cpu_has_bf16());
  return "convolutions: " + convolutions +
         "; max pooling: " + (pooling ? "oneDNN's" : "libtorch's");
}

bool onednn_conv_supports(const at::Tensor& input,
                          const at::Tensor& kernel,
                          const ConvPadding& pad) {
  if (!onednn_enabled()) {
    return false;
  }
  return own_winograd_takes(input, kernel, pad) || onednn::conv_supported(input, kernel, pad);
}

at::Tensor try_onednn_conv2d(const at::Tensor& input,
                             const at::Tensor& kernel,
                             const at::Tensor& bias,
                             const ConvPadding& pad,
                             bool relu) {
  if (!onednn_enabled()) {
    return at::Tensor();
  }
  if (own_winograd_takes(input, kernel, pad)) {
    return winograd::conv2d(input, kernel, bias, pad.top, pad.left, relu);
  }
  return onednn::try_conv2d(input, kernel, bias, pad, relu);
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

#ifdef MNIST_WITH_ONEDNN

namespace onednn {

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

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

void reorder(const memory::desc& from,
             const void* from_data,
             const memory::desc& to,
             void* to_data) {
  const memory src(from, cpu_engine(), const_cast<void*>(from_data));
  const memory dst(to, cpu_engine(), to_data);
  dnnl::reorder(src, dst).execute(cpu_stream(), const_cast<memory&>(src), const_cast<memory&>(dst));
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

}  // namespace onednn

bool onednn_built() { return true; }

std::string onednn_cpu_isa() {
  using dnnl::cpu_isa;
  static const std::pair<cpu_isa, const char*> kNames[] = {
      {cpu_isa::sse41, "sse41"},
      {cpu_isa::avx, "avx"},
      {cpu_isa::avx2, "avx2"},
      {cpu_isa::avx2_vnni, "avx2_vnni"},
      {cpu_isa::avx512_core, "avx512_core"},
      {cpu_isa::avx512_core_vnni, "avx512_core_vnni"},
      {cpu_isa::avx512_core_bf16, "avx512_core_bf16"},
      {cpu_isa::avx512_core_amx, "avx512_core_amx"},
  };
  const cpu_isa isa = dnnl::get_effective_cpu_isa();
  for (const auto& [value, name] : kNames) {
    if (value == isa) {
      return name;
    }
  }
  return "other";
}

#else  // no oneDNN headers at build time: libtorch's kernels only

bool onednn_built() { return false; }

std::string onednn_cpu_isa() { return "none (built without oneDNN's headers)"; }

at::Tensor try_onednn_max_pool2d(const at::Tensor&,
                                 at::IntArrayRef,
                                 at::IntArrayRef,
                                 const ConvPadding&) {
  return at::Tensor();
}

#endif

}  // namespace mnist
