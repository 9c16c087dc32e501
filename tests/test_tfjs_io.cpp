// TF.js export: model.json equals what TF.js writes, weights.bin holds every
// weight in TF.js layout, files are replaced atomically.
#include "mnist/tfjs_io.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
#include "mnist/train.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace mnist {
namespace {

ordered_json read_json(const std::string& path) {
  std::ifstream in(path);
  return ordered_json::parse(in);
}

std::vector<char> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

float float_at(const std::vector<char>& bytes, size_t byte_offset, size_t index) {
  float v = 0.0F;
  std::memcpy(&v, bytes.data() + byte_offset + 4 * index, 4);
  return v;
}

TEST(TfjsIoTest, ModelJsonIsWhatTfjsWritesGeneratedByAside) {
  ConvNet model;
  ordered_json ours = model_json(model);
  ordered_json reference =
      read_json(std::string(MNIST_TEST_DATA_DIR) + "/tfjs_reference_model.json");
  EXPECT_EQ(ours["generatedBy"], generated_by());
  EXPECT_NE(generated_by().find("mnist-train"), std::string::npos);
  ours["generatedBy"] = reference["generatedBy"];
  // Same keys in the same order, same values: compare the serialised text.
  EXPECT_EQ(ours.dump(), reference.dump());
}

TEST(TfjsIoTest, ManifestNamesShapesAndOrder) {
  ConvNet model;
  const ordered_json manifest = model_json(model)["weightsManifest"];
  ASSERT_EQ(manifest.size(), 1U);
  EXPECT_EQ(manifest[0]["paths"], ordered_json::array({"weights.bin"}));
  const auto& w = manifest[0]["weights"];
  ASSERT_EQ(w.size(), 12U);
  EXPECT_EQ(w[0]["name"], "conv2d_Conv2D1/kernel");
  EXPECT_EQ(w[0]["shape"], ordered_json::array({3, 3, 1, 32}));
  EXPECT_EQ(w[6]["shape"], ordered_json::array({3, 3, 64, 64}));
  EXPECT_EQ(w[8]["name"], "dense_Dense1/kernel");
  EXPECT_EQ(w[8]["shape"], ordered_json::array({1024, 512}));
  EXPECT_EQ(w[11]["name"], "dense_Dense2/bias");
  EXPECT_EQ(w[11]["dtype"], "float32");
}

TEST(TfjsIoTest, WeightsBinLayoutIsTfjs) {
  torch::manual_seed(11);
  ConvNet model;
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) {
      p.uniform_(-1.0, 1.0);  // nonzero biases too
    }
  }
  to_channels_last(model);  // as trained: the export must not depend on strides
  const std::vector<char> bytes = weights_bin(model);
  ASSERT_EQ(bytes.size(), 2379688U);
  // conv2d_Conv2D2/kernel at byte 1280, TF.js [kh,kw,in,out] = [3,3,32,32]:
  // element (kh=1, kw=2, in=5, out=7) is torch weight[7][5][1][2].
  const size_t conv2_index = ((1 * 3 + 2) * 32 + 5) * 32 + 7;
  EXPECT_EQ(float_at(bytes, 1280, conv2_index), model->conv2->weight[7][5][1][2].item<float>());
  // conv2d_Conv2D4/bias at byte 259712.
  EXPECT_EQ(float_at(bytes, 259712, 63), model->conv4->bias[63].item<float>());
  // dense_Dense1/kernel at byte 259968, TF.js [in,out]: (in=300, out=17) is
  // torch weight[17][300].
  EXPECT_EQ(float_at(bytes, 259968, 300 * 512 + 17), model->dense1->weight[17][300].item<float>());
  // dense_Dense2/bias: the last 10 floats.
  EXPECT_EQ(float_at(bytes, 2379648, 9), model->dense2->bias[9].item<float>());
}

TEST(TfjsIoTest, SaveWritesBothFilesAndNoTemporaries) {
  test::TempDir dir;
  const std::string out = dir.file("nested/model");
  ConvNet model;
  save_tfjs(model, out);
  EXPECT_EQ(fs::file_size(out + "/weights.bin"), 2379688U);
  EXPECT_EQ(read_json(out + "/model.json")["format"], "layers-model");
  save_tfjs(model, out);  // replacing works too
  int entries = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 2);
}

TEST(TfjsIoTest, ModelJsonIsOneLine) {
  test::TempDir dir;
  ConvNet model;
  save_tfjs(model, dir.path().string());
  const std::vector<char> text = read_all(dir.file("model.json"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 0);
}

TEST(TfjsIoTest, AtomicWriteReplacesWholeFile) {
  test::TempDir dir;
  write_file_atomic(dir.file("a.txt"), std::string("old content that is long"));
  write_file_atomic(dir.file("a.txt"), std::string("new"));
  const std::vector<char> text = read_all(dir.file("a.txt"));
  EXPECT_EQ(std::string(text.begin(), text.end()), "new");
}

TEST(TfjsIoTest, UnusableSaveDirIsAnIoError) {
  test::TempDir dir;
  test::write_bytes(dir.file("plainfile"), {1, 2, 3});
  try {
    ensure_writable_dir(dir.file("plainfile/model"));
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("plainfile/model: cannot create the model folder"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ensure_writable_dir(dir.file("plainfile")), IoError);
  EXPECT_THROW(ensure_writable_dir("/proc/mnist-train-model"), IoError);
}

}  // namespace
}  // namespace mnist
