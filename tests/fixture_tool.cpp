// Test tool for the checks against real TF.js and the CLI end-to-end tests.
//   mnist_fixture export OUTDIR N SEED   save a model with seeded random
//       weights (biases too) and our probabilities for the first N MNIST test
//       images (OUTDIR/probs.bin, N*10 float32 LE), for tfjs_check.js
//   mnist_fixture check MODEL PROBS N    load MODEL (e.g. saved by TF.js) and
//       compare our probabilities for the first N test images with PROBS
//       (written by TF.js); fails above 1e-5
//   mnist_fixture check-raw MODEL INPUTS PROBS N H W C   the same on N raw
//       inputs of [H,W,C] (INPUTS: float32 LE, NHWC, as make_reference_model.js
//       --arch mobilenet-v1 writes them) instead of MNIST images
//   mnist_fixture finetune-raw MODEL UP_TO STEPS OUTDIR   fine-tune MODEL (one
//       of make_reference_model.js's mobilenet archs: MODEL/inputs.bin and
//       info.json) as a user would: freeze_up_to(UP_TO), replace_head with
//       info.json's headUnits; check the parameter counts against TF.js's
//       (info.json "freeze"); save that model with Dropout rate 0
//       (OUTDIR/start) and random labels (OUTDIR/labels-idx1-ubyte), then
//       train it by full-batch SGD steps on MODEL's inputs: OUTDIR/one after
//       one step, OUTDIR/steps (with history.json) after STEPS, for
//       fit_check.js; the frozen layers' kernels, gammas and betas must not
//       move (their moving statistics do, as in TF.js's fit)
//   mnist_fixture finetune-raw MODEL UP_TO STEPS OUTDIR OPTIMIZER   the same
//       with TF.js's OPTIMIZER (rmsprop, adam, ...) at its default rate
//   mnist_fixture finetune-raw MODEL UP_TO STEPS OUTDIR float64   the same,
//       and the same STEPS steps again from OUTDIR/start with the model and
//       inputs in float64 (by hand: forward, TF.js's cross-entropy, backward,
//       w -= 0.01 g): OUTDIR/one64 and OUTDIR/steps64 (with history.json),
//       rounded to float32 only when saved: the reference a float32 step is
//       a rounding of (tests/mobilenet_finetune.sh)
//   mnist_fixture probs MODEL N OUT      load MODEL and write our
//       probabilities for the first N test images (for tfjs_check.js --expect)
//   mnist_fixture preds MODEL N OUT.json load MODEL and write our predicted
//       classes for the first N test images as a JSON array (browser test)
//   mnist_fixture png OUT.png INDEX      write test image INDEX as a PNG,
//       dark ink on white and 3x larger (as a user's scan might be)
//   mnist_fixture png-bomb OUT.png SIDE  write a valid SIDE x SIDE all-black
//       8-bit gray PNG, deflated at level 9 (20000: 390 KB claiming 400 MB)
//   mnist_fixture png-digit OUT.png SIDE a SIDE x SIDE PNG of a dark bar on
//       white (a valid digit "1" at any size)
//   mnist_fixture image-corpus DIR       write the seed corpus of fuzz_image:
//       a PNG of every colour type, bit depth, palette and interlacing, PGM
//       P2/P5 (8 and 16 bits), truncated files and lying headers
//   mnist_fixture versions OUTDIR        write three models for serve's version
//       test: OUTDIR/A and OUTDIR/B (the convnet, two seeds), OUTDIR/C (a
//       different topology: flatten, dense 10 softmax), each naming itself in
//       userDefinedMetadata.version, and OUTDIR/expected.json: each one's
//       probabilities for the image with pixel i = (i % 7) / 7
//   mnist_fixture replace DIR COUNT PAUSE_MS SRC...  save the SRC models into
//       DIR in turn, COUNT saves in all, each as mnist-train saves (FolderLock,
//       save_tfjs), PAUSE_MS apart; each model's saves cycle through one
//       weights.bin and two shard sizes
// Test images come from $MNIST_DATA_DIR (or data/mnist).
#include <spng.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include "mnist/data.hpp"
#include "mnist/device.hpp"
#include "mnist/evaluate.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/history.hpp"
#include "mnist/model.hpp"
#include "mnist/optimizer.hpp"
#include "mnist/tfjs_io.hpp"
#include "mnist/train.hpp"
#include "png_util.hpp"
#include "test_util.hpp"

namespace {

mnist::Dataset test_images(int64_t n) {
  return mnist::load_pair(mnist::default_data_dir(), mnist::kTestImagesFile, mnist::kTestLabelsFile,
                          n);
}

void write_probs(const at::Tensor& probs, const std::string& path) {
  const at::Tensor p = probs.contiguous();
  std::ofstream file(path, std::ios::binary);
  file.write(static_cast<const char*>(p.data_ptr()),
             static_cast<std::streamsize>(p.numel() * sizeof(float)));
  if (!file) {
    throw std::runtime_error("cannot write " + path);
  }
}

int export_model(const std::string& out, int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  mnist::Model model(mnist::mnist_node_spec());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) {
      if (p.dim() == 1) {
        p.normal_(0.0, 0.1);  // zero biases would hide a bias layout bug
      }
    }
  }
  mnist::to_channels_last(model);  // export as a trained model is exported
  mnist::save_tfjs(model, out);
  const at::Tensor probs = mnist::predict_proba(model, test_images(n).images, 256);
  write_probs(probs, out + "/probs.bin");
  std::printf("saved %s with probabilities for %lld images\n", out.c_str(),
              static_cast<long long>(probs.size(0)));
  return 0;
}

int write_versions(const std::string& out) {
  mnist::ModelSpec small;
  small.layers = {
      mnist::make_layer("Flatten", {{"name", "flatten_Flatten1"}}),
      mnist::make_layer("Dense",
                        {{"name", "dense_Dense1"}, {"units", 10}, {"activation", "softmax"}})};
  const std::vector<std::pair<std::string, mnist::ModelSpec>> versions = {
      {"A", mnist::mnist_node_spec()}, {"B", mnist::mnist_node_spec()}, {"C", small}};
  at::Tensor image = at::arange(784, at::kFloat).fmod(7).div(7).reshape({1, 1, 28, 28});
  nlohmann::json expected;
  uint64_t seed = 1;
  for (const auto& [tag, spec] : versions) {
    torch::manual_seed(seed++);
    mnist::Model model(spec);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) {
        if (p.dim() == 1) {
          p.normal_(0.0, 0.1);
        }
      }
    }
    model->set_metadata({{"version", tag}});
    mnist::save_tfjs(model, out + "/" + tag);
    const at::Tensor probs = mnist::predict_proba(model, image, 1).contiguous();
    expected[tag] = std::vector<float>(probs.data_ptr<float>(), probs.data_ptr<float>() + 10);
  }
  std::ofstream file(out + "/expected.json");
  file << expected.dump() << "\n";
  if (!file) {
    throw std::runtime_error("cannot write " + out + "/expected.json");
  }
  std::printf("wrote versions A, B, C and expected.json in %s\n", out.c_str());
  return 0;
}

int replace_models(const std::string& dir,
                   int64_t count,
                   int64_t pause_ms,
                   const std::vector<std::string>& sources) {
  std::vector<mnist::Model> models;
  for (const std::string& source : sources) {
    models.push_back(mnist::load_tfjs(source));
  }
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < count; ++i) {
    {
      const mnist::FolderLock lock = mnist::FolderLock::wait(dir);
      // Each model in turn, and each in three layouts in turn (one
      // weights.bin, 6 or 3 shards of the convnet), so that a replacement
      // also changes which files the model is made of.
      const uint64_t shard_sizes[] = {0, 400009, 1000003};
      const size_t n = models.size();
      mnist::save_tfjs(
          models[static_cast<size_t>(i) % n], dir,
          {mnist::WeightStorage::kFloat32, shard_sizes[(static_cast<size_t>(i) / n) % 3]});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::printf("replaced the model in %s %lld times in %.1f s\n", dir.c_str(),
              static_cast<long long>(count), took.count());
  return 0;
}

int model_probs(const std::string& dir, int64_t n, const std::string& out) {
  mnist::Model model = mnist::load_tfjs(dir);
  write_probs(mnist::predict_proba(model, test_images(n).images, 256), out);
  std::printf("wrote our probabilities for %lld test images to %s\n", static_cast<long long>(n),
              out.c_str());
  return 0;
}

int model_preds(const std::string& dir, int64_t n, const std::string& out) {
  mnist::Model model = mnist::load_tfjs(dir);
  const at::Tensor preds = mnist::predict_proba(model, test_images(n).images, 256).argmax(1);
  std::vector<int64_t> list(preds.data_ptr<int64_t>(), preds.data_ptr<int64_t>() + preds.numel());
  std::ofstream file(out);
  file << nlohmann::json(list).dump() << "\n";
  if (!file) {
    throw std::runtime_error("cannot write " + out);
  }
  std::printf("wrote our predictions for %lld test images to %s\n", static_cast<long long>(n),
              out.c_str());
  return 0;
}

/// Compares our probabilities `ours` [N,K] for MODEL `dir` with the N*K
/// floats of `probs_file` (TF.js's): PASS within 1e-5 and every argmax the same.
int compare_probs(const std::string& dir,
                  const mnist::Model& model,
                  const at::Tensor& ours,
                  const std::string& probs_file,
                  const char* what) {
  const int64_t n = ours.size(0);
  std::ifstream in(probs_file, std::ios::binary);
  std::vector<float> theirs(static_cast<size_t>(ours.numel()));
  in.read(reinterpret_cast<char*>(theirs.data()),
          static_cast<std::streamsize>(theirs.size() * sizeof(float)));
  if (!in) {
    std::fprintf(stderr, "%s: expected %zu floats\n", probs_file.c_str(), theirs.size());
    return 1;
  }
  const at::Tensor ref = at::from_blob(theirs.data(), ours.sizes(), at::kFloat);
  const double max_diff = (ours - ref).abs().max().item<double>();
  const int64_t agree = ours.argmax(1).eq(ref.argmax(1)).sum().item<int64_t>();
  std::printf("%s: %lld params; max |ours - tfjs| = %.3g over %lld %s; argmax agree %lld\n",
              dir.c_str(), static_cast<long long>(mnist::count_params(model)), max_diff,
              static_cast<long long>(n), what, static_cast<long long>(agree));
  const bool ok = max_diff <= 1e-5 && agree == n;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

int check_model(const std::string& dir, const std::string& probs_file, int64_t n) {
  mnist::Model model = mnist::load_tfjs(dir);
  const at::Tensor ours = mnist::predict_proba(model, test_images(n).images, 256);
  return compare_probs(dir, model, ours, probs_file, "images");
}

/// N inputs of [h,w,c] from float32 little-endian NHWC values, as the
/// [N,C,H,W] tensor the core takes.
at::Tensor read_raw_inputs(const std::string& file, int64_t n, const std::vector<int64_t>& hwc) {
  if (n < 1 || hwc.size() != 3 || hwc[0] < 1 || hwc[1] < 1 || hwc[2] < 1) {
    throw std::runtime_error("inputs need N >= 1 and a shape H,W,C of positive sizes");
  }
  at::Tensor nhwc = at::empty({n, hwc[0], hwc[1], hwc[2]}, at::kFloat);
  std::ifstream in(file, std::ios::binary);
  in.read(static_cast<char*>(nhwc.data_ptr()),
          static_cast<std::streamsize>(nhwc.numel() * sizeof(float)));
  if (!in) {
    throw std::runtime_error(file + ": expected " + std::to_string(nhwc.numel()) +
                             " float32 values (" + std::to_string(n) + " inputs of [" +
                             std::to_string(hwc[0]) + "," + std::to_string(hwc[1]) + "," +
                             std::to_string(hwc[2]) + "])");
  }
  return nhwc.permute({0, 3, 1, 2}).contiguous();
}

int check_raw(const std::string& dir,
              const std::string& inputs_file,
              const std::string& probs_file,
              int64_t n,
              const std::vector<int64_t>& hwc) {
  mnist::Model model = mnist::load_tfjs(dir);
  const at::Tensor ours = mnist::predict_proba(model, read_raw_inputs(inputs_file, n, hwc), 256);
  return compare_probs(dir, model, ours, probs_file, "inputs");
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read " + path);
  }
  return nlohmann::json::parse(in);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  file << text;
  if (!file) {
    throw std::runtime_error("cannot write " + path);
  }
}

/// Every weight's values, by TF.js name (copies).
std::vector<std::pair<std::string, at::Tensor>> snapshot(const mnist::Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [name, tensor] : model->tfjs_weights()) {
    out.emplace_back(name, tensor.detach().clone());
  }
  return out;
}

/// STEPS full-batch SGD steps (lr 0.01, TF.js's 'sgd') of the model saved
/// in START, computed in float64 (weights, inputs and every activation;
/// BatchNormalization in training mode, its moving statistics moving as in
/// train()), saved (as float32) to OUT/one64 after the first and OUT/steps64
/// after the last, with the losses in OUT/steps64/history.json.
void sgd_steps_float64(const std::string& start,
                       const at::Tensor& inputs,
                       const at::Tensor& labels,
                       int64_t steps,
                       const std::string& out) {
  mnist::Model model = mnist::load_tfjs(start);
  model->to(at::kDouble);
  model->train();
  const at::Tensor x = inputs.to(at::kDouble);
  nlohmann::ordered_json epochs = nlohmann::ordered_json::array();
  for (int64_t step = 1; step <= steps; ++step) {
    for (at::Tensor& p : model->parameters()) {
      if (p.grad().defined()) {
        p.mutable_grad().zero_();
      }
    }
    const at::Tensor loss = mnist::tfjs_categorical_crossentropy(model->forward(x), labels);
    loss.backward();
    {
      torch::NoGradGuard no_grad;
      for (at::Tensor& p : model->parameters()) {
        if (p.requires_grad() && p.grad().defined()) {
          p.sub_(p.grad() * 0.01);
        }
      }
    }
    epochs.push_back({{"epoch", step}, {"loss", loss.item<double>()}});
    if (step == 1 || step == steps) {
      const std::string saved = out + (step == 1 ? "/one64" : "/steps64");
      mnist::Model copy = mnist::load_tfjs(start);  // the same model, float32, for saving
      {
        torch::NoGradGuard no_grad;
        const auto from = model->tfjs_weights();
        const auto to = copy->tfjs_weights();
        for (size_t k = 0; k < from.size(); ++k) {
          to[k].second.copy_(from[k].second);  // rounded to float32
        }
      }
      mnist::save_tfjs(copy, saved);
      if (step == steps) {
        write_text(saved + "/history.json", nlohmann::ordered_json{{"epochs", epochs}}.dump());
      }
    }
  }
}

int finetune_raw(const std::string& dir,
                 const std::string& up_to,
                 int64_t steps,
                 const std::string& out,
                 bool float64,
                 mnist::OptimizerKind kind) {
  const nlohmann::json info = read_json(dir + "/info.json");
  const int64_t n = info.at("count").get<int64_t>();
  const auto hwc = info.at("inputShape").get<std::vector<int64_t>>();
  nlohmann::json expected;
  for (const auto& f : info.at("freeze")) {
    if (f.at("upTo") == up_to) {
      expected = f;
    }
  }
  if (expected.is_null() || steps < 2) {
    throw std::runtime_error(dir + "/info.json has no TF.js counts for freezing up to " + up_to +
                             " (or STEPS < 2)");
  }
  const int64_t units = expected.at("headUnits").get<int64_t>();
  const at::Tensor inputs = read_raw_inputs(dir + "/inputs.bin", n, hwc);

  // As a fine-tuning user: the base frozen up to UP_TO, a new head.
  mnist::Model base = mnist::load_tfjs(dir);
  const auto frozen = static_cast<int64_t>(mnist::freeze_up_to(base, up_to));
  torch::manual_seed(1);
  mnist::Model tuned = mnist::replace_head(base, units);
  const int64_t params = mnist::count_params(tuned);
  const int64_t trainable = mnist::count_trainable_params(tuned);
  std::printf(
      "frozen up to %s, head of %lld units: ours %lld layers frozen, %lld params, %lld "
      "trainable, %lld non-trainable; TF.js %lld, %lld, %lld, %lld\n",
      up_to.c_str(), static_cast<long long>(units), static_cast<long long>(frozen),
      static_cast<long long>(params), static_cast<long long>(trainable),
      static_cast<long long>(params - trainable),
      static_cast<long long>(expected.at("frozenLayers").get<int64_t>()),
      static_cast<long long>(expected.at("params").get<int64_t>()),
      static_cast<long long>(expected.at("trainable").get<int64_t>()),
      static_cast<long long>(expected.at("nonTrainable").get<int64_t>()));
  bool ok = frozen == expected.at("frozenLayers").get<int64_t>() &&
            params == expected.at("params").get<int64_t>() &&
            trainable == expected.at("trainable").get<int64_t>();

  // Dropout off, so that both fits are deterministic (fit_fidelity.sh does
  // the same): saved, its model.json's rates set to 0, loaded again. That
  // folder is where TF.js's fit starts too.
  const std::string start = out + "/start";
  mnist::save_tfjs(tuned, start);
  nlohmann::ordered_json model_json = [&] {
    std::ifstream in(start + "/model.json");
    return nlohmann::ordered_json::parse(in);
  }();
  for (auto& layer : model_json["modelTopology"]["config"]["layers"]) {
    if (layer["class_name"] == "Dropout") {
      layer["config"]["rate"] = 0;
    }
  }
  write_text(start + "/model.json", model_json.dump());
  tuned = mnist::load_tfjs(start);
  if (mnist::count_trainable_params(tuned) != trainable) {
    std::printf("FAIL: saved and loaded again, the model has %lld trainable params\n",
                static_cast<long long>(mnist::count_trainable_params(tuned)));
    return 1;
  }

  // Random labels of the new head's classes, as an IDX labels file.
  torch::manual_seed(2);
  const at::Tensor labels = at::randint(0, units, {n}, at::kLong);
  std::string idx = {0, 0, 8, 1};
  for (int shift = 24; shift >= 0; shift -= 8) {
    idx.push_back(static_cast<char>((n >> shift) & 0xFF));
  }
  for (int64_t i = 0; i < n; ++i) {
    idx.push_back(static_cast<char>(labels[i].item<int64_t>()));
  }
  write_text(out + "/labels-idx1-ubyte", idx);

  // Full-batch steps (TF.js's 'sgd': lr 0.01, or `kind`), in order, on one thread
  // (as fit_fidelity.sh runs mnist-train: the same sums on any machine).
  mnist::configure_cpu_threads(1);
  const auto initial = snapshot(tuned);
  mnist::Optimizer optimizer(tuned->parameters(), kind);
  mnist::TrainConfig cfg;
  cfg.batch_size = n;
  cfg.shuffle = false;
  mnist::TrainState state;
  const mnist::Dataset train_set{inputs, labels};
  for (const int64_t epochs : {int64_t{1}, steps}) {
    cfg.epochs = epochs;
    mnist::train(tuned, optimizer, train_set, mnist::Dataset{}, cfg, state, {});
    const std::string saved = out + (epochs == 1 ? "/one" : "/steps");
    mnist::save_tfjs(tuned, saved);
    write_text(saved + "/history.json",
               nlohmann::ordered_json{{"epochs", mnist::epochs_to_json(state.history)}}.dump());
  }

  // The frozen layers: kernels, gammas and betas as they were, bit for bit;
  // the moving statistics moved (TF.js's fit runs every BatchNormalization,
  // frozen or not, in training mode).
  const auto after = snapshot(tuned);
  int64_t frozen_weights = 0;
  int64_t moved_frozen = 0;
  double stats_moved = 0.0;
  double trained_moved = 0.0;
  for (size_t k = 0; k < after.size(); ++k) {
    const std::string& name = after[k].first;
    const std::string layer = name.substr(0, name.rfind('/'));
    const size_t index = tuned->layer_index(layer);
    bool statistic = false;  // a weight that takes no gradient: a moving statistic
    for (const mnist::WeightSpec& spec : tuned->weight_specs(index)) {
      statistic = statistic || (name == layer + "/" + spec.name && !spec.gradient);
    }
    const double change = (after[k].second - initial[k].second).abs().max().item<double>();
    if (!tuned->spec().layers[index]->trainable) {
      if (statistic) {
        stats_moved = std::max(stats_moved, change);
      } else {
        ++frozen_weights;
        moved_frozen += change != 0.0 ? 1 : 0;
      }
    } else if (!statistic) {
      trained_moved = std::max(trained_moved, change);
    }
  }
  std::printf(
      "after %lld SGD steps: %lld of the %lld frozen weights moved; frozen BatchNormalization "
      "moving statistics moved by up to %.3g; the trainable weights by up to %.3g; losses",
      static_cast<long long>(steps), static_cast<long long>(moved_frozen),
      static_cast<long long>(frozen_weights), stats_moved, trained_moved);
  for (const auto& e : state.history) {
    std::printf(" %.6f", e.loss);
  }
  std::printf("\n");
  ok = ok && moved_frozen == 0 && frozen_weights > 0 && trained_moved > 0.0;
  if (float64) {
    sgd_steps_float64(start, inputs, labels, steps, out);
    std::printf("the same %lld steps in float64: %s/one64, %s/steps64\n",
                static_cast<long long>(steps), out.c_str(), out.c_str());
  }
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

int write_png(const std::string& out, int64_t index) {
  const mnist::Dataset d = test_images(index + 1);
  // Dark ink on white, 3x larger (nearest), as a photographed digit might be.
  at::Tensor img = (1.0 - d.images[index][0]) * 255.0;
  img = img.repeat_interleave(3, 0).repeat_interleave(3, 1).round().to(at::kByte).contiguous();
  mnist::test::write_bytes(
      out, mnist::test::gray_png(static_cast<uint32_t>(img.size(1)),
                                 static_cast<uint32_t>(img.size(0)), img.data_ptr<uint8_t>()));
  std::printf("%s: test image %lld, label %lld\n", out.c_str(), static_cast<long long>(index),
              static_cast<long long>(d.labels[index].item<int64_t>()));
  return 0;
}

// An 8-bit gray SIDE x SIDE PNG written row by row at deflate level 9, so
// that the 400 MB of pixels of a 20000x20000 bomb never exist: all black, or
// with `digit` a dark bar ("1") on white filling most of the height.
int write_big_png(const std::string& out, uint32_t side, bool digit) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(out.c_str(), "wb"), std::fclose);
  std::unique_ptr<spng_ctx, void (*)(spng_ctx*)> ctx(spng_ctx_new(SPNG_CTX_ENCODER), spng_ctx_free);
  spng_ihdr ihdr{side, side, 8, 0, 0, 0, 0};
  int rc = file ? spng_set_png_file(ctx.get(), file.get()) : SPNG_IO_ERROR;
  rc = rc != 0 ? rc : spng_set_option(ctx.get(), SPNG_IMG_COMPRESSION_LEVEL, 9);
  rc = rc != 0 ? rc : spng_set_ihdr(ctx.get(), &ihdr);
  rc = rc != 0 ? rc
               : spng_encode_image(ctx.get(), nullptr, 0, SPNG_FMT_PNG,
                                   SPNG_ENCODE_PROGRESSIVE | SPNG_ENCODE_FINALIZE);
  std::vector<uint8_t> row(side, digit ? 255 : 0);
  if (digit) {
    std::fill(row.begin() + side * 9 / 20, row.begin() + side * 11 / 20, 0);
  }
  const std::vector<uint8_t> blank(side, digit ? 255 : 0);
  for (uint32_t y = 0; rc == 0 && y < side; ++y) {
    const bool ink = y >= side / 10 && y < side * 9 / 10;
    rc = spng_encode_row(ctx.get(), (ink ? row : blank).data(), side);
    rc = rc == SPNG_EOI ? 0 : rc;
  }
  if (rc != 0) {
    std::fprintf(stderr, "cannot write %s: %s\n", out.c_str(), spng_strerror(rc));
    return 1;
  }
  return 0;
}

int write_image_corpus(const std::string& dir) {
  namespace t = mnist::test;
  size_t written = 0;
  const auto put = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    t::write_bytes(dir + "/" + name, bytes);
    ++written;
  };
  for (const t::PngKind& k : t::kPngKinds) {
    put(std::string("png_") + k.name + ".png", t::encode_png(t::make_png_sample(k).png));
  }
  // A digit-like image large enough to be shrunk in several bands.
  std::vector<uint8_t> big(300 * 300, 255);
  for (size_t y = 40; y < 260; ++y) {
    for (size_t x = 130; x < 170; ++x) {
      big[y * 300 + x] = 0;
    }
  }
  const std::vector<uint8_t> digit = t::gray_png(300, 300, big.data());
  put("png_digit_300.png", digit);
  put("png_digit_300_interlaced.png", t::gray_png(300, 300, big.data(), true));
  put("png_truncated_in_header.png", {digit.begin(), digit.begin() + 20});
  put("png_truncated_in_pixels.png", {digit.begin(), digit.begin() + 200});
  std::vector<uint8_t> bad_crc = digit;
  bad_crc[30] ^= 0xFF;
  put("png_bad_crc.png", bad_crc);
  put("png_claims_20000x20000.png", t::claim_size(digit, 20000, 20000));
  put("png_claims_4096x4096.png", t::claim_size(digit, 4096, 4096));  // allowed; too little data
  put("png_claims_1x1.png", t::claim_size(digit, 1, 1));              // too much data
  const std::string header5 = "P5\n# digit\n16 12\n255\n";
  std::vector<uint8_t> p5(header5.begin(), header5.end());
  std::string p2 = "P2\n16 12\n15\n";
  std::vector<uint8_t> p5_16;
  const std::string header16 = "P5 16 12 65535\n";
  p5_16.assign(header16.begin(), header16.end());
  for (int i = 0; i < 16 * 12; ++i) {
    const int v = (i % 16 > 5 && i % 16 < 10) ? 0 : 255;
    p5.push_back(static_cast<uint8_t>(v));
    p2 += std::to_string(v / 17) + (i % 16 == 15 ? "\n" : " ");
    p5_16.insert(p5_16.end(), {static_cast<uint8_t>(v), static_cast<uint8_t>(v)});
  }
  put("pgm_p5.pgm", p5);
  put("pgm_p2.pgm", {p2.begin(), p2.end()});
  put("pgm_p5_16bit.pgm", p5_16);
  put("pgm_truncated.pgm", {p5.begin(), p5.end() - 50});
  const std::string lying = "P5 60000 60000 255\n";
  put("pgm_claims_60000x60000.pgm", {lying.begin(), lying.end()});
  put("jpeg_magic.jpg", {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F'});
  std::printf("%s: %zu seed inputs\n", dir.c_str(), written);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() == 4 && a[0] == "export") {
      return export_model(a[1], std::stoll(a[2]), std::stoull(a[3]));
    }
    if (a.size() == 4 && a[0] == "check") {
      return check_model(a[1], a[2], std::stoll(a[3]));
    }
    if (a.size() == 8 && a[0] == "check-raw") {
      return check_raw(a[1], a[2], a[3], std::stoll(a[4]),
                       {std::stoll(a[5]), std::stoll(a[6]), std::stoll(a[7])});
    }
    if ((a.size() == 5 || a.size() == 6) && a[0] == "finetune-raw") {
      // The last argument: float64 (SGD steps also in float64) or the
      // optimizer's name (TF.js's: sgd, rmsprop, adam, ...); SGD by default.
      const std::string mode = a.size() == 6 ? a[5] : "sgd";
      const auto kind = mnist::parse_optimizer(mode == "float64" ? "sgd" : mode);
      if (!kind) {
        std::fprintf(stderr, "mnist_fixture: no optimizer %s\n", mode.c_str());
        return 2;
      }
      return finetune_raw(a[1], a[2], std::stoll(a[3]), a[4], mode == "float64", *kind);
    }
    if (a.size() == 4 && a[0] == "probs") {
      return model_probs(a[1], std::stoll(a[2]), a[3]);
    }
    if (a.size() == 4 && a[0] == "preds") {
      return model_preds(a[1], std::stoll(a[2]), a[3]);
    }
    if (a.size() == 3 && a[0] == "png") {
      return write_png(a[1], std::stoll(a[2]));
    }
    if (a.size() == 3 && (a[0] == "png-bomb" || a[0] == "png-digit")) {
      return write_big_png(a[1], static_cast<uint32_t>(std::stoul(a[2])), a[0] == "png-digit");
    }
    if (a.size() == 2 && a[0] == "versions") {
      return write_versions(a[1]);
    }
    if (a.size() >= 5 && a[0] == "replace") {
      return replace_models(a[1], std::stoll(a[2]), std::stoll(a[3]), {a.begin() + 4, a.end()});
    }
    if (a.size() == 2 && a[0] == "image-corpus") {
      return write_image_corpus(a[1]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_fixture: %s\n", e.what());
    return 1;
  }
  std::fprintf(
      stderr,
      "usage: mnist_fixture export OUTDIR N SEED | check MODEL PROBS N | check-raw MODEL INPUTS "
      "PROBS N H W C | finetune-raw MODEL UP_TO STEPS OUTDIR [float64|OPTIMIZER] | probs MODEL N "
      "OUT | "
      "preds MODEL N OUT | png OUT INDEX | png-bomb|png-digit OUT SIDE | image-corpus DIR | "
      "versions OUTDIR | replace DIR COUNT PAUSE_MS SRC...\n");
  return 2;
}
