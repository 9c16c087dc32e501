// Test tool for the checks against real TF.js and the CLI end-to-end tests.
//   mnist_fixture export OUTDIR N SEED   save a model with seeded random
//       weights (biases too) and our probabilities for the first N MNIST test
//       images (OUTDIR/probs.bin, N*10 float32 LE), for tfjs_check.js
//   mnist_fixture check MODEL PROBS N    load MODEL (e.g. saved by TF.js) and
//       compare our probabilities for the first N test images with PROBS
//       (written by TF.js); fails above 1e-5
//   mnist_fixture probs MODEL N OUT      load MODEL and write our
//       probabilities for the first N test images (for tfjs_check.js --expect)
//   mnist_fixture preds MODEL N OUT.json load MODEL and write our predicted
//       classes for the first N test images as a JSON array (browser test)
//   mnist_fixture png OUT.png INDEX      write test image INDEX as a PNG,
//       dark ink on white and 3x larger (as a user's scan might be)
// Test images come from $MNIST_DATA_DIR (or data/mnist).
#include <stb_image_write.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include "mnist/data.hpp"
#include "mnist/model.hpp"
#include "mnist/tfjs_io.hpp"
#include "mnist/train.hpp"

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

int check_model(const std::string& dir, const std::string& probs_file, int64_t n) {
  mnist::Model model = mnist::load_tfjs(dir);
  const at::Tensor ours = mnist::predict_proba(model, test_images(n).images, 256);
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
  std::printf("%s: %lld params; max |ours - tfjs| = %.3g over %lld images; argmax agree %lld\n",
              dir.c_str(), static_cast<long long>(mnist::count_params(model)), max_diff,
              static_cast<long long>(n), static_cast<long long>(agree));
  const bool ok = max_diff <= 1e-5 && agree == n;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

int write_png(const std::string& out, int64_t index) {
  const mnist::Dataset d = test_images(index + 1);
  // Dark ink on white, 3x larger (nearest), as a photographed digit might be.
  at::Tensor img = (1.0 - d.images[index][0]) * 255.0;
  img = img.repeat_interleave(3, 0).repeat_interleave(3, 1).round().to(at::kByte).contiguous();
  if (stbi_write_png(out.c_str(), static_cast<int>(img.size(1)), static_cast<int>(img.size(0)), 1,
                     img.data_ptr(), static_cast<int>(img.size(1))) == 0) {
    std::fprintf(stderr, "cannot write %s\n", out.c_str());
    return 1;
  }
  std::printf("%s: test image %lld, label %lld\n", out.c_str(), static_cast<long long>(index),
              static_cast<long long>(d.labels[index].item<int64_t>()));
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
    if (a.size() == 4 && a[0] == "probs") {
      return model_probs(a[1], std::stoll(a[2]), a[3]);
    }
    if (a.size() == 4 && a[0] == "preds") {
      return model_preds(a[1], std::stoll(a[2]), a[3]);
    }
    if (a.size() == 3 && a[0] == "png") {
      return write_png(a[1], std::stoll(a[2]));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_fixture: %s\n", e.what());
    return 1;
  }
  std::fprintf(
      stderr,
      "usage: mnist_fixture export OUTDIR N SEED | check MODEL PROBS N | probs MODEL N OUT | "
      "preds MODEL N OUT | png OUT INDEX\n");
  return 2;
}
