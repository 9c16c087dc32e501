// Data loading: pairing, limits, .gz fallback and the TF.js validation split.
#include "mnist/data.hpp"

#include <string>
#include <utility>
#include <vector>

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

TEST(DataTest, LabelsParseAsRangesAndListsInTheOrderGiven) {
  EXPECT_EQ(parse_labels("0-4"), (LabelSet{0, 1, 2, 3, 4}));
  EXPECT_EQ(parse_labels("5,6,7,8,9"), (LabelSet{5, 6, 7, 8, 9}));
  EXPECT_EQ(parse_labels("9,0-2,7"), (LabelSet{9, 0, 1, 2, 7}));
  EXPECT_EQ(parse_labels("0-9"), all_labels());
  EXPECT_EQ(labels_text({5, 6, 7, 8, 9}), "5-9");
  EXPECT_EQ(labels_text({3, 1}), "3,1");
  EXPECT_EQ(labels_text({4, 5}), "4,5");
  for (const auto& [text, why] : std::vector<std::pair<std::string, std::string>>{
           {"", "'' is not a label"},
           {"5", "a classifier needs at least two labels"},
           {"3,3", "3 is given twice"},
           {"0-4,2", "2 is given twice"},
           {"4-1", "the range 4-1 runs backwards"},
           {"10", "'10' is not a label"},
           {"-1,2", "'' is not a label"},
           {"1,,2", "'' is not a label"},
           {"0-4,", "'' is not a label"},
           {"a-b", "'a' is not a label"}}) {
    try {
      parse_labels(text);
      ADD_FAILURE() << text << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--labels " + text + ": " + why), std::string::npos)
          << e.what();
    }
  }
}

TEST(DataTest, SelectLabelsKeepsFileOrderAndRelabelsByPosition) {
  Dataset data{at::arange(8, at::kFloat).view({8, 1, 1, 1}),
               at::tensor({7, 2, 5, 0, 9, 5, 1, 7}, at::kLong)};
  const Dataset picked = select_labels(data, {7, 5});
  ASSERT_EQ(picked.size(), 4);
  EXPECT_TRUE(picked.labels.equal(at::tensor({0, 1, 1, 0}, at::kLong)));
  EXPECT_TRUE(picked.images.flatten().equal(at::tensor({0.0F, 2.0F, 5.0F, 7.0F})));
  EXPECT_EQ(select_labels(data, {3, 4}).size(), 0);
  EXPECT_TRUE(select_labels(data, all_labels()).labels.equal(data.labels));
}

TEST(DataTest, LabelSetsAreSavedInTheMetadataAndReadBack) {
  using nlohmann::ordered_json;
  const ordered_json digits = with_labels(nullptr, DatasetKind::kMnist, {5, 6, 7});
  EXPECT_EQ(digits.dump(), R"({"dataset":"mnist","classNames":["5","6","7"],"labels":[5,6,7]})");
  EXPECT_EQ(labels_of(digits, 3), (LabelSet{5, 6, 7}));
  EXPECT_EQ(class_names_of(digits, 3), (std::vector<std::string>{"5", "6", "7"}));
  // Other keys stay; all ten MNIST labels again remove ours.
  ordered_json mine = digits;
  mine["author"] = "me";
  EXPECT_EQ(with_labels(mine, DatasetKind::kMnist, all_labels()).dump(), R"({"author":"me"})");
  EXPECT_TRUE(with_labels(digits, DatasetKind::kMnist, all_labels()).is_null());
  const ordered_json fashion = with_labels(nullptr, DatasetKind::kFashionMnist, {9, 7});
  EXPECT_EQ(class_names_of(fashion, 2), (std::vector<std::string>{"Ankle boot", "Sneaker"}));
  EXPECT_EQ(with_labels(nullptr, DatasetKind::kFashionMnist, all_labels()),
            dataset_metadata(DatasetKind::kFashionMnist));
  // A model made elsewhere with K outputs and no label set: labels 0..K-1;
  // a label set that does not fit the outputs is not believed.
  EXPECT_EQ(labels_of(nullptr, 3), (LabelSet{0, 1, 2}));
  EXPECT_EQ(labels_of(digits, 4), (LabelSet{0, 1, 2, 3}));
  EXPECT_EQ(labels_of(ordered_json::parse(R"({"labels":[5,5,6]})"), 3), (LabelSet{0, 1, 2}));
  EXPECT_EQ(labels_of(ordered_json::parse(R"({"labels":[5,"6",7]})"), 3), (LabelSet{0, 1, 2}));
  EXPECT_EQ(labels_of(ordered_json::parse(R"({"labels":[5,10,7]})"), 3), (LabelSet{0, 1, 2}));
  EXPECT_EQ(class_names_of(nullptr), class_names(DatasetKind::kMnist));
}

}  // namespace
}  // namespace mnist
