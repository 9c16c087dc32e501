// Shared by src/onednn/: oneDNN's CPU engine and stream, conversions between
// libtorch tensors and oneDNN memory descriptors, and a bounded plan cache.
// Private to the oneDNN module (include/mnist/onednn.hpp is its interface).
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <oneapi/dnnl/dnnl.hpp>

namespace mnist::onednn {

using dnnl::memory;
using Dims = memory::dims;

/// The process's oneDNN CPU engine.
const dnnl::engine& cpu_engine();
/// This thread's stream on it.
dnnl::stream& cpu_stream();

/// oneDNN's type for float32 or bf16 tensors, and back.
memory::data_type dnnl_type(at::ScalarType t);
at::ScalarType torch_type(const memory::desc& d);

/// A tensor's layout as oneDNN describes it (its sizes and strides).
memory::desc desc_of(const at::Tensor& t);

/// Copies (and converts) `from_data` in layout `from` into `to_data` in `to`.
void reorder(const memory::desc& from,
             const void* from_data,
             const memory::desc& to,
             void* to_data);

/// Memory for a oneDNN layout that no libtorch tensor describes.
at::Tensor buffer_for(const memory::desc& d);

/// `data`, in layout `have`, in layout `want`: itself, or a reordered copy.
at::Tensor converted(const memory::desc& have, const at::Tensor& data, const memory::desc& want);

/// `t`'s data in layout `want` (type conversions included): `t` itself if
/// it already has it, else a reordered copy.
at::Tensor in_layout(const at::Tensor& t, const memory::desc& want);

/// A channels-last tensor of `sizes` that a primitive writes in `layout`:
/// the primitive writes it directly where the layouts agree, else into
/// `*staging`, which to_tensor() then reorders into it.
at::Tensor out_tensor(const memory::desc& layout, at::IntArrayRef sizes, at::Tensor* staging);
void to_tensor(const memory::desc& layout, const at::Tensor& staging, at::Tensor& out);

/// oneDNN memory over a tensor's data.
memory mem(const memory::desc& d, const at::Tensor& t);

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

/// Keeps a plan's key (a std::array of int64_t) in an autograd context, and
/// reads it back in the backward pass, which then finds the plan again.
template <typename KeyT>
void save_key(torch::autograd::AutogradContext* ctx, const KeyT& key) {
  ctx->saved_data["key"] = std::vector<int64_t>(key.begin(), key.end());
}
template <typename KeyT>
KeyT saved_key(torch::autograd::AutogradContext* ctx) {
  const std::vector<int64_t> values = ctx->saved_data["key"].toIntVector();
  KeyT key{};
  std::copy(values.begin(), values.end(), key.begin());
  return key;
}

}  // namespace mnist::onednn
