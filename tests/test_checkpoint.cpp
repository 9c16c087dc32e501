// Checkpoints: a save/load round trip restores everything, folders appear
// whole, only the newest two are kept; stop + continue equals no stop.
#include "mnist/checkpoint.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

Dataset noisy(int64_t n) {
  return {at::rand({n, 1, 28, 28}), at::arange(n, at::kLong).remainder(10)};
}

TEST(CheckpointTest, RoundTripRestoresModelOptimizerStateAndGenerator) {
  test::TempDir dir;
  torch::manual_seed(4);
  Model model(mnist_node_spec());
  RmsProp optimizer(model->parameters(), RmsPropOptions{});
  TrainConfig cfg;
  cfg.epochs = 1;
  cfg.batch_size = 16;
  TrainState state;
  train(model, optimizer, noisy(40), Dataset{}, cfg, state, {});
  state.epoch = 2;
  state.batch = 1;
  state.order = at::randperm(40, at::kLong);
  state.loss_sum = 12.375;
  state.correct = 7;
  const at::Tensor rng_before = at::globalContext().defaultGenerator(c10::kCPU).get_state();
  const std::string path = save_checkpoint(dir.path().string(), model, optimizer, state,
                                           {{"seed", 4}}, c10::Device(c10::kCPU));
  EXPECT_EQ(std::filesystem::path(path).filename(), "ckpt-000002-0000001");
  EXPECT_EQ(latest_checkpoint(dir.path().string()), path);

  at::rand({5});  // move the generator on
  const Checkpoint c = load_checkpoint(path);
  for (const auto& [name, tensor] : model->tfjs_weights()) {
    EXPECT_TRUE(c.model->weight(name).equal(tensor)) << name;
  }
  ASSERT_EQ(c.mean_squares.size(), optimizer.mean_squares().size());
  for (size_t i = 0; i < c.mean_squares.size(); ++i) {
    EXPECT_TRUE(c.mean_squares[i].equal(optimizer.mean_squares()[i].contiguous()));
  }
  EXPECT_EQ(c.state.epoch, 2);
  EXPECT_EQ(c.state.batch, 1);
  EXPECT_TRUE(c.state.order.equal(state.order));
  EXPECT_EQ(c.state.loss_sum, 12.375);
  EXPECT_EQ(c.state.correct, 7);
  ASSERT_EQ(c.state.history.size(), 1U);
  EXPECT_EQ(c.state.history[0].loss, state.history[0].loss);
  EXPECT_EQ(c.settings["seed"], 4);
  restore_generators(c);
  EXPECT_TRUE(at::globalContext().defaultGenerator(c10::kCPU).get_state().equal(rng_before));
}

TEST(CheckpointTest, KeepsTheNewestTwoAndIgnoresIncompleteFolders) {
  test::TempDir dir;
  Model model(mnist_node_spec());
  RmsProp optimizer(model->parameters(), RmsPropOptions{});
  TrainState state;
  for (int64_t e = 1; e <= 3; ++e) {
    state.epoch = e;
    save_checkpoint(dir.path().string(), model, optimizer, state, {}, c10::Device(c10::kCPU));
  }
  std::filesystem::create_directories(dir.path() / "ckpt-000009-0000000");  // no state.json
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "ckpt-000001-0000000"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "ckpt-000002-0000000"));
  EXPECT_EQ(std::filesystem::path(latest_checkpoint(dir.path().string())).filename(),
            "ckpt-000003-0000000");
  EXPECT_EQ(latest_checkpoint(dir.file("nothing-here")), "");
}

TEST(CheckpointTest, StopThenContinueEqualsAnUninterruptedRun) {
  const Dataset data = noisy(48);
  TrainConfig cfg;
  cfg.epochs = 2;
  cfg.batch_size = 8;
  cfg.progress_every = 1;
  const int threads = at::get_num_threads();
  at::set_num_threads(1);

  torch::manual_seed(9);
  Model a(mnist_node_spec());
  RmsProp opt_a(a->parameters(), RmsPropOptions{});
  TrainState sa;
  ASSERT_EQ(train(a, opt_a, data, Dataset{}, cfg, sa, {}), TrainOutcome::kFinished);

  torch::manual_seed(9);
  Model b(mnist_node_spec());
  RmsProp opt_b(b->parameters(), RmsPropOptions{});
  TrainState sb;
  std::atomic<bool> stop{false};
  TrainCallbacks cb;
  cb.stop = &stop;
  cb.on_batch = [&](const BatchProgress& p) { stop = p.epoch == 1 && p.batch == 2; };
  int checkpoints = 0;
  cb.on_checkpoint = [&](const TrainState&) { ++checkpoints; };
  ASSERT_EQ(train(b, opt_b, data, Dataset{}, cfg, sb, cb), TrainOutcome::kStopped);
  EXPECT_EQ(sb.epoch, 1);
  EXPECT_EQ(sb.batch, 2);
  EXPECT_EQ(checkpoints, 1);
  stop = false;
  cb.on_batch = nullptr;
  ASSERT_EQ(train(b, opt_b, data, Dataset{}, cfg, sb, cb), TrainOutcome::kFinished);
  at::set_num_threads(threads);

  for (const auto& [name, tensor] : a->tfjs_weights()) {
    EXPECT_TRUE(b->weight(name).equal(tensor)) << name;
  }
  ASSERT_EQ(sb.history.size(), 2U);
  EXPECT_EQ(sb.history[1].loss, sa.history[1].loss);
  EXPECT_EQ(sb.history[0].accuracy, sa.history[0].accuracy);
}

}  // namespace
}  // namespace mnist
