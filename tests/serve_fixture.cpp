// Test tool for the browser test: trains the model briefly (seeded, a few
// thousand images), saves it like `mnist-train --model-save-path` does
// (model.json, weights.bin, history.json) and writes our predictions for the
// first N test images: probs.bin (N*10 float32) and preds.json (argmax).
// Usage: mnist_serve_fixture OUTDIR N SEED
#include <cstdio>
#include <fstream>
#include <string>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/utils.h>

#include "mnist/data.hpp"
#include "mnist/evaluate.hpp"
#include "mnist/model.hpp"
#include "mnist/tfjs_io.hpp"
#include "mnist/train.hpp"

namespace {

constexpr int64_t kTrainImages = 4000;
constexpr int64_t kEpochs = 2;
constexpr int64_t kTestImages = 1000;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s OUTDIR N SEED\n", argv[0]);
    return 2;
  }
  try {
    const std::string out = argv[1];
    const int64_t n = std::stoll(argv[2]);
    const uint64_t seed = std::stoull(argv[3]);
    torch::manual_seed(seed);
    const std::string dir = mnist::default_data_dir();
    const mnist::MnistData data = mnist::load_mnist(dir, kTrainImages, kTestImages);
    const mnist::Split split = mnist::split_validation(data.train, 0.15);

    mnist::ConvNet model;
    mnist::to_channels_last(model);
    mnist::TrainConfig cfg;
    cfg.epochs = kEpochs;
    const auto history = mnist::train(model, split.train, split.validation, cfg, {});
    const mnist::EvalResult test = mnist::evaluate(model, data.test, 256);
    mnist::save_tfjs(model, out);

    nlohmann::ordered_json epochs = nlohmann::ordered_json::array();
    for (const auto& s : history) {
      epochs.push_back({{"epoch", s.epoch}, {"loss", s.loss}, {"acc", s.accuracy},
                        {"val_loss", s.val_loss}, {"val_acc", s.val_accuracy},
                        {"seconds", s.seconds}});
    }
    nlohmann::ordered_json doc;
    doc["generatedBy"] = mnist::generated_by() + " (tests/serve_fixture.cpp)";
    doc["settings"] = {{"epochs", kEpochs}, {"batch_size", cfg.batch_size},
                       {"train_limit", kTrainImages}, {"seed", seed}};
    doc["device"] = "CPU";
    doc["epochs"] = epochs;
    doc["test"] = {{"loss", test.loss}, {"acc", test.accuracy}, {"count", test.count}};
    mnist::write_file_atomic(out + "/history.json", doc.dump(2) + "\n");

    const at::Tensor images = data.test.images.narrow(0, 0, std::min(n, data.test.size()));
    const at::Tensor probs = mnist::predict_proba(model, images, 256).contiguous();
    std::ofstream file(out + "/probs.bin", std::ios::binary);
    file.write(static_cast<const char*>(probs.data_ptr()),
               static_cast<std::streamsize>(probs.numel() * sizeof(float)));
    const at::Tensor preds = probs.argmax(1);
    nlohmann::json list = nlohmann::json::array();
    for (int64_t i = 0; i < preds.size(0); ++i) {
      list.push_back(preds[i].item<int64_t>());
    }
    std::ofstream(out + "/preds.json") << list.dump() << "\n";
    if (!file) {
      std::fprintf(stderr, "cannot write %s/probs.bin\n", out.c_str());
      return 1;
    }
    std::printf("saved %s (test accuracy %.3f) with predictions for %lld images\n",
                out.c_str(), test.accuracy, static_cast<long long>(preds.size(0)));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_serve_fixture: %s\n", e.what());
    return 1;
  }
}
