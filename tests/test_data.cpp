// Data loading: pairing, limits, .gz fallback and the TF.js validation split.
#include "mnist/data.hpp"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

using test::TempDir;

TEST(DataTest, LoadsPairsWithShapesAndScaling) {
  TempDir dir;
  test::write_tiny_mnist(dir.path().string(), kTrainImagesFile, kTrainLabelsFile, 20);
  test::write_tiny_mnist(dir.path().string(), kTestImagesFile, kTestLabelsFile, 7);
  const MnistData data = load_mnist(dir.path().string(), 0, 0);
  EXPECT_EQ(data.train.images.sizes(), (at::IntArrayRef{20, 1, 28, 28}));
  EXPECT_EQ(data.test.size(), 7);
  EXPECT_GE(data.train.images.min().item<float>(), 0.0F);
  EXPECT_LE(data.train.images.max().item<float>(), 1.0F);
  EXPECT_EQ(data.train.labels[13].item<int64_t>(), 3);
}

TEST(DataTest, LimitsKeepTheFirstRecords) {
  TempDir dir;
  test::write_tiny_mnist(dir.path().string(), kTrainImagesFile, kTrainLabelsFile, 20);
  test::write_tiny_mnist(dir.path().string(), kTestImagesFile, kTestLabelsFile, 7);
  const MnistData data = load_mnist(dir.path().string(), 5, 100);
  EXPECT_EQ(data.train.size(), 5);
  EXPECT_EQ(data.test.size(), 7);  // a limit above the count keeps all
  EXPECT_TRUE(data.train.labels.equal(at::arange(5, at::kLong)));
}

TEST(DataTest, FallsBackToGzipFiles) {
  TempDir dir;
  std::vector<uint8_t> pixels(2 * 784, 255);
  test::write_idx(dir.file(std::string(kTestImagesFile) + ".gz"), 2051, {2, 28, 28}, pixels, true);
  test::write_idx(dir.file(std::string(kTestLabelsFile) + ".gz"), 2049, {2}, {4, 5}, true);
  const Dataset d = load_pair(dir.path().string(), kTestImagesFile, kTestLabelsFile, 0);
  EXPECT_EQ(d.size(), 2);
  EXPECT_FLOAT_EQ(d.images.mean().item<float>(), 1.0F);
}

TEST(DataTest, RejectsLabelCountMismatch) {
  TempDir dir;
  test::write_tiny_mnist(dir.path().string(), kTestImagesFile, kTestLabelsFile, 4);
  test::write_idx(dir.file(kTestLabelsFile), 2049, {3}, {1, 2, 3});
  try {
    load_pair(dir.path().string(), kTestImagesFile, kTestLabelsFile, 0);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("holds 3 labels, but"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("holds 4 images"), std::string::npos) << e.what();
  }
}

TEST(DataTest, MissingFolderIsADataError) {
  EXPECT_THROW(load_mnist("/nonexistent/mnist", 0, 0), DataError);
}

TEST(DataTest, ValidationIsTheLastFractionBeforeShuffling) {
  Dataset d{at::arange(100, at::kFloat).view({100, 1, 1, 1}), at::arange(100, at::kLong)};
  const Split s = split_validation(d, 0.15);
  EXPECT_EQ(s.train.size(), 85);
  EXPECT_EQ(s.validation.size(), 15);
  EXPECT_EQ(s.validation.labels[0].item<int64_t>(), 85);
  EXPECT_EQ(s.train.labels[84].item<int64_t>(), 84);
}

TEST(DataTest, SplitMatchesTfjsRoundingOnFullMnist) {
  // tfjs: splitAt = floor(60000 * 0.85) = 51000 training images.
  Dataset d{at::zeros({60000, 1, 1, 1}), at::zeros({60000}, at::kLong)};
  EXPECT_EQ(split_validation(d, 0.15).train.size(), 51000);
  EXPECT_EQ(split_validation(d, 0.0).validation.size(), 0);
  EXPECT_THROW(split_validation(d, 1.0), ConfigError);
}

}  // namespace
}  // namespace mnist
