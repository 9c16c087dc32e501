// Test tool: saves a model with known seeded random weights (biases too) in
// the TF.js format and writes our softmax probabilities for the first N MNIST
// test images, for tests/node/tfjs_check.js to compare against real TF.js.
// Usage: mnist_export_fixture OUTDIR N SEED
#include <cstdio>
#include <fstream>
#include <string>

#include <ATen/ATen.h>
#include <torch/utils.h>
#include <torch/utils.h>

#include "mnist/data.hpp"
#include "mnist/model.hpp"
#include "mnist/tfjs_io.hpp"
#include "mnist/train.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s OUTDIR N SEED\n", argv[0]);
    return 2;
  }
  try {
    const std::string out = argv[1];
    const int64_t n = std::stoll(argv[2]);
    torch::manual_seed(std::stoull(argv[3]));
    mnist::ConvNet model;
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
    const mnist::Dataset test = mnist::load_pair(
        mnist::default_data_dir(), mnist::kTestImagesFile, mnist::kTestLabelsFile, n);
    const at::Tensor probs = mnist::predict_proba(model, test.images, 256).contiguous();
    std::ofstream file(out + "/probs.bin", std::ios::binary);
    file.write(static_cast<const char*>(probs.data_ptr()),
               static_cast<std::streamsize>(probs.numel() * sizeof(float)));
    if (!file) {
      std::fprintf(stderr, "cannot write %s/probs.bin\n", out.c_str());
      return 1;
    }
    std::printf("saved %s with probabilities for %lld images\n", out.c_str(),
                static_cast<long long>(probs.size(0)));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_export_fixture: %s\n", e.what());
    return 1;
  }
}
