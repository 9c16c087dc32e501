// GraphedStep: a captured CUDA training step replays with each batch's
// indices and gives what eager steps give; CPU-only builds refuse it clearly.
#include "mnist/cuda_graph.hpp"

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include "mnist/error.hpp"

namespace mnist {
namespace {

TEST(GraphedStepTest, RefusedWhereUnsupported) {
  if (GraphedStep::available() && torch::cuda::is_available()) {
    GTEST_SKIP() << "this build and machine support CUDA graphs";
  }
  const auto make = [] {
    GraphedStep step([](const at::Tensor&) {}, 4,
                     c10::Device(GraphedStep::available() ? c10::kCPU : c10::kCUDA));
  };
  EXPECT_THROW(make(), DeviceError);
}

/// Least squares by gradient descent, one batch of rows per step: the same
/// batches through a GraphedStep and eagerly must give the same weights.
TEST(GraphedStepTest, CapturedBackwardAndUpdateMatchEagerSteps) {
  if (!GraphedStep::available() || !torch::cuda::is_available()) {
    GTEST_SKIP() << "no CUDA graph support here (CPU-only libtorch or no GPU)";
  }
  const c10::Device cuda(c10::kCUDA, 0);
  torch::manual_seed(3);
  const at::Tensor x = at::randn({64, 3}).to(cuda);
  const at::Tensor y = (x.matmul(at::tensor({1.0F, -2.0F, 0.5F}).to(cuda)) + 0.3).contiguous();
  const auto make_step = [&](const at::Tensor& w, const at::Tensor& seen) {
    return [&x, &y, w, seen](const at::Tensor& idx) {
      w.mutable_grad().reset();
      const at::Tensor err = x.index_select(0, idx).matmul(w) - y.index_select(0, idx);
      const at::Tensor loss = (err * err).mean();
      loss.backward();
      torch::NoGradGuard no_grad;
      w.sub_(w.grad() * 0.1);
      seen.add_(idx.sum());
    };
  };
  const auto opts = at::TensorOptions(cuda);
  const at::Tensor w_graph = at::zeros({3}, opts).requires_grad_(true);
  const at::Tensor w_eager = at::zeros({3}, opts).requires_grad_(true);
  const at::Tensor seen_graph = at::zeros({}, opts.dtype(at::kLong));
  const at::Tensor seen_eager = at::zeros({}, opts.dtype(at::kLong));
  GraphedStep graphed(make_step(w_graph, seen_graph), 8, cuda, /*warmup=*/2);
  const auto eager = make_step(w_eager, seen_eager);
  int replays = 0;
  for (int i = 0; i < 40; ++i) {  // 2 warm-up steps, a capture, 37 replays
    const at::Tensor idx = at::randperm(64, at::kLong).narrow(0, 0, 8).to(cuda);
    replays += graphed(idx) ? 1 : 0;  // true: the step's host code did not run
    eager(idx);
  }
  EXPECT_EQ(replays, 37);
  torch::cuda::synchronize();
  EXPECT_EQ(seen_graph.item<int64_t>(), seen_eager.item<int64_t>());
  EXPECT_TRUE(w_graph.detach().allclose(w_eager.detach(), 1e-5, 1e-6)) << w_graph << w_eager;
  EXPECT_LT((w_graph.detach().cpu() - at::tensor({1.0F, -2.0F, 0.5F})).abs().max().item<float>(),
            0.2F);
}

/// Dropout inside a captured step draws new random numbers on every replay
/// (a graph that froze one mask would still train, only worse).
TEST(GraphedStepTest, DropoutMasksChangeFromReplayToReplay) {
  if (!GraphedStep::available() || !torch::cuda::is_available()) {
    GTEST_SKIP() << "no CUDA graph support here (CPU-only libtorch or no GPU)";
  }
  const c10::Device cuda(c10::kCUDA, 0);
  const auto opts = at::TensorOptions(cuda);
  const at::Tensor ones = at::ones({4096}, opts);
  const at::Tensor last = at::zeros({4096}, opts);
  const at::Tensor changed = at::zeros({}, opts.dtype(at::kLong));
  const at::Tensor kept = at::zeros({}, opts.dtype(at::kLong));
  GraphedStep graphed(
      [&](const at::Tensor&) {
        const at::Tensor mask = at::dropout(ones, 0.5, /*train=*/true).ne(0);
        changed.add_(mask.ne(last).sum());
        kept.add_(mask.sum());
        last.copy_(mask);
      },
      1, cuda, /*warmup=*/1);
  const at::Tensor idx = at::zeros({1}, opts.dtype(at::kLong));
  graphed(idx);  // warm-up
  graphed(idx);  // capture and first replay
  changed.zero_();
  kept.zero_();
  constexpr int kReplays = 20;
  for (int i = 0; i < kReplays; ++i) {
    graphed(idx);
  }
  // Independent masks differ in about half of the elements each time.
  const double per_replay = static_cast<double>(changed.item<int64_t>()) / kReplays;
  EXPECT_NEAR(per_replay / 4096.0, 0.5, 0.05);
  EXPECT_NEAR(static_cast<double>(kept.item<int64_t>()) / (kReplays * 4096.0), 0.5, 0.05);
}

}  // namespace
}  // namespace mnist
