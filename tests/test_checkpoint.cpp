// Checkpoints: a save/load round trip restores everything, folders appear
// whole, only the newest two are kept; stop + continue equals no stop.
#include "mnist/checkpoint.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/utils.h>

#include "mnist/callbacks.hpp"
#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/tfjs_io.hpp"
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
  Optimizer optimizer(model->parameters(), OptimizerKind::kRmsProp);
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
  EXPECT_EQ(c.optimizer, OptimizerKind::kRmsProp);
  EXPECT_EQ(c.learning_rate, 0.001);
  EXPECT_EQ(c.optimizer_iterations, 3);  // 40 images in batches of 16
  ASSERT_EQ(c.optimizer_slots.size(), optimizer.slots().size());
  for (size_t i = 0; i < c.optimizer_slots.size(); ++i) {
    EXPECT_TRUE(c.optimizer_slots[i].equal(optimizer.slots()[i].contiguous()));
  }
  EXPECT_TRUE(c.callbacks.is_null());
  EXPECT_TRUE(c.best_weights.empty());
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

TEST(CheckpointTest, KeepsEveryOptimizersStateTheCallbacksAndTheBestWeights) {
  test::TempDir dir;
  torch::manual_seed(5);
  Model model(mnist_node_spec());
  Optimizer optimizer(model->parameters(), OptimizerKind::kAdam, 0.004);
  TrainConfig cfg;
  cfg.epochs = 1;
  cfg.batch_size = 16;
  TrainState state;
  train(model, optimizer, noisy(32), Dataset{}, cfg, state, {});
  optimizer.set_learning_rate(0.0004);
  const std::vector<at::Tensor> best = copy_parameters(model);
  const nlohmann::ordered_json callbacks = {{"anything", 1}};
  const std::string path = save_checkpoint(dir.path().string(), model, optimizer, state, {},
                                           c10::Device(c10::kCPU), callbacks, best);
  const Checkpoint c = load_checkpoint(path);
  EXPECT_EQ(c.optimizer, OptimizerKind::kAdam);
  EXPECT_EQ(c.learning_rate, 0.0004);
  EXPECT_EQ(c.optimizer_iterations, 2);
  ASSERT_EQ(c.optimizer_slots.size(), 2 * model->parameters().size());
  for (size_t i = 0; i < c.optimizer_slots.size(); ++i) {
    EXPECT_TRUE(c.optimizer_slots[i].equal(optimizer.slots()[i].contiguous())) << i;
  }
  EXPECT_EQ(c.callbacks, callbacks);
  ASSERT_EQ(c.best_weights.size(), best.size());
  for (size_t i = 0; i < best.size(); ++i) {
    EXPECT_TRUE(c.best_weights[i].equal(best[i])) << i;
  }
  Optimizer restored(c.model->parameters(), c.optimizer);
  restored.load_state(c.optimizer_slots, c.optimizer_iterations);
  EXPECT_EQ(restored.iterations(), 2);
  Optimizer sgd(model->parameters(), OptimizerKind::kSgd);  // no slots at all
  const Checkpoint s = load_checkpoint(
      save_checkpoint(dir.file("sgd"), model, sgd, state, {}, c10::Device(c10::kCPU)));
  EXPECT_EQ(s.optimizer, OptimizerKind::kSgd);
  EXPECT_TRUE(s.optimizer_slots.empty());
}

TEST(CheckpointTest, KeepsTheNewestTwoAndIgnoresIncompleteFolders) {
  test::TempDir dir;
  Model model(mnist_node_spec());
  Optimizer optimizer(model->parameters(), OptimizerKind::kRmsProp);
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

// A kill can land while a checkpoint is written, while an old one is pruned or
// while a stale same-named one is replaced. The folders that are then half
// written or half deleted carry hidden names (.tmp-ckpt-...-<pid>,
// .old-ckpt-...-<pid>): never taken for checkpoints, and removed by the next
// save once their process is gone. A ckpt-* folder is always whole.
TEST(CheckpointTest, KilledWritesAndDeletionsLeaveOnlyHiddenFoldersThatTheNextSaveRemoves) {
  test::TempDir dir;
  namespace fs = std::filesystem;
  Model model(mnist_node_spec());
  Optimizer optimizer(model->parameters(), OptimizerKind::kRmsProp);
  TrainState state;
  state.epoch = 2;
  save_checkpoint(dir.path().string(), model, optimizer, state, {}, c10::Device(c10::kCPU));

  // What a process killed mid-way leaves (pid 999999999 is above any pid_max):
  // a half-deleted old checkpoint that still holds its state.json, and a
  // half-written one. Also a folder of a live process (pid 1), left alone.
  const fs::path dead_old = dir.path() / ".old-ckpt-000001-0000000-999999999";
  const fs::path dead_tmp = dir.path() / ".tmp-ckpt-000009-0000000-999999999";
  const fs::path live_tmp = dir.path() / ".tmp-ckpt-000009-0000000-1";
  for (const fs::path& p : {dead_old, dead_tmp, live_tmp}) {
    fs::create_directories(p);
    test::write_bytes((p / "state.json").string(), {'{', '}'});
  }
  test::write_bytes(dir.file(".mnist-train-probe.999999999"), {});
  EXPECT_EQ(fs::path(latest_checkpoint(dir.path().string())).filename(), "ckpt-000002-0000000");

  state.epoch = 3;
  save_checkpoint(dir.path().string(), model, optimizer, state, {}, c10::Device(c10::kCPU));
  EXPECT_FALSE(fs::exists(dead_old));
  EXPECT_FALSE(fs::exists(dead_tmp));
  EXPECT_FALSE(fs::exists(dir.file(".mnist-train-probe.999999999")));
  EXPECT_TRUE(fs::exists(live_tmp));
  fs::remove(live_tmp / "state.json");
  fs::remove(live_tmp);

  // Pruning (epoch 2 goes) and replacing a stale checkpoint of the same
  // position (epoch 3 again, from another run) leave nothing else behind.
  state.epoch = 4;
  save_checkpoint(dir.path().string(), model, optimizer, state, {}, c10::Device(c10::kCPU));
  state.epoch = 3;
  state.loss_sum = 42.5;
  const std::string replaced =
      save_checkpoint(dir.path().string(), model, optimizer, state, {}, c10::Device(c10::kCPU));
  EXPECT_EQ(load_checkpoint(replaced).state.loss_sum, 42.5);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"ckpt-000003-0000000", "ckpt-000004-0000000"}));
  for (const std::string& name : names) {
    EXPECT_TRUE(fs::exists(dir.path() / name / "state.json")) << name;
    EXPECT_TRUE(fs::exists(dir.path() / name / "weights.bin")) << name;
  }
}

// save_tfjs (here beside the checkpoints that use it): replacing a model of
// one architecture with another. A kill between its steps leaves model.json
// naming staged weights (weights.new-<pid>-<n>.bin) or staged weights that
// nothing names; such a folder loads, and the next save puts back the usual
// model.json + weights.bin and removes what killed saves left.
TEST(SaveTfjsReplaceTest, AFolderLeftByAKilledSaveLoadsAndTheNextSaveCleansItUp) {
  test::TempDir dir;
  namespace fs = std::filesystem;
  const std::string folder = dir.path().string();
  ModelSpec spec;
  spec.layers = {test::layer("Flatten", "flatten_Flatten1"),
                 test::layer("Dense", "dense_Dense1", {{"units", 10}, {"activation", "softmax"}})};
  Model small(spec);
  Model big(mnist_node_spec());
  save_tfjs(big, folder);

  // A save of `small` killed after its model.json went in (pid 999999999
  // is above any pid_max), and temporary files of killed saves.
  const std::vector<char> bytes = weights_bin(small);
  test::write_bytes(dir.file("weights.new-999999999-0.bin"),
                    std::vector<uint8_t>(bytes.begin(), bytes.end()));
  nlohmann::ordered_json doc = model_json(small);
  doc["weightsManifest"][0]["paths"] = {"weights.new-999999999-0.bin"};
  write_file_atomic(dir.file("model.json"), doc.dump());
  test::write_bytes(dir.file("weights.new-999999999-1.bin"), {1, 2, 3, 4});
  test::write_bytes(dir.file(".weights.bin.tmp.999999999"), {1, 2, 3, 4});
  test::write_bytes(dir.file(".model.json.tmp.999999999"), {'{'});
  test::write_bytes(dir.file("notes.txt"), {'h', 'i'});
  const Model left = load_tfjs(folder);
  EXPECT_EQ(left->weight("dense_Dense1/kernel").numel(), 7840);

  save_tfjs(big, folder);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"model.json", "notes.txt", "weights.bin"}));
  EXPECT_EQ(read_json_file(dir.file("model.json"))["weightsManifest"][0]["paths"],
            nlohmann::ordered_json::array({"weights.bin"}));
  const Model back = load_tfjs(folder);
  for (const auto& [name, tensor] : big->tfjs_weights()) {
    EXPECT_TRUE(back->weight(name).equal(tensor)) << name;
  }

  // And back to the small model over the big one.
  save_tfjs(small, folder);
  EXPECT_EQ(load_tfjs(folder)->weight("dense_Dense1/kernel").numel(), 7840);
  EXPECT_EQ(fs::file_size(dir.file("weights.bin")), bytes.size());
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
  Optimizer opt_a(a->parameters(), OptimizerKind::kRmsProp);
  TrainState sa;
  ASSERT_EQ(train(a, opt_a, data, Dataset{}, cfg, sa, {}), TrainOutcome::kFinished);

  torch::manual_seed(9);
  Model b(mnist_node_spec());
  Optimizer opt_b(b->parameters(), OptimizerKind::kRmsProp);
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
