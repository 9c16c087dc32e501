// IDX reader: good raw and gzip files, and every way a file can be wrong.
#include "mnist/idx.hpp"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

using test::TempDir;
using test::write_idx;

std::vector<uint8_t> ramp(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) {
    v[i] = static_cast<uint8_t>(i % 256);
  }
  return v;
}

/// The DataError message read_idx throws for `path`, or "" if none.
std::string error_of(const std::string& path, uint32_t magic) {
  try {
    read_idx(path, magic);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

TEST(IdxTest, ReadsRawImages) {
  TempDir dir;
  write_idx(dir.file("img"), 2051, {3, 28, 28}, ramp(3 * 784));
  const at::Tensor images = read_idx_images(dir.file("img"));
  EXPECT_EQ(images.sizes(), (at::IntArrayRef{3, 1, 28, 28}));
  EXPECT_EQ(images.scalar_type(), at::kFloat);
  const at::Tensor flat = images.flatten();
  EXPECT_FLOAT_EQ(flat[0].item<float>(), 0.0F);
  EXPECT_FLOAT_EQ(flat[255].item<float>(), 1.0F);                       // pixel 255 -> 1
  EXPECT_FLOAT_EQ(flat[784 + 51].item<float>(), (835 % 256) / 255.0F);  // record 1
}

TEST(IdxTest, ReadsGzipLikeRaw) {
  TempDir dir;
  const auto payload = ramp(5 * 784);
  write_idx(dir.file("raw"), 2051, {5, 28, 28}, payload);
  write_idx(dir.file("img.gz"), 2051, {5, 28, 28}, payload, /*gzip=*/true);
  EXPECT_TRUE(read_idx_images(dir.file("raw")).equal(read_idx_images(dir.file("img.gz"))));
}

TEST(IdxTest, ReadsLabels) {
  TempDir dir;
  write_idx(dir.file("lab"), 2049, {4}, {7, 0, 9, 3});
  const at::Tensor labels = read_idx_labels(dir.file("lab"));
  EXPECT_EQ(labels.scalar_type(), at::kLong);
  EXPECT_TRUE(labels.equal(at::tensor({7, 0, 9, 3}, at::kLong)));
}

TEST(IdxTest, AcceptsAnyRecordCountIncludingZero) {
  TempDir dir;
  write_idx(dir.file("img"), 2051, {0, 28, 28}, {});
  EXPECT_EQ(read_idx_images(dir.file("img")).size(0), 0);
  write_idx(dir.file("img1"), 2051, {1, 28, 28}, ramp(784));
  EXPECT_EQ(read_idx_images(dir.file("img1")).size(0), 1);
}

TEST(IdxTest, RejectsBadMagicAndNamesTheSwap) {
  TempDir dir;
  write_idx(dir.file("train-images-idx3-ubyte"), 2049, {2}, {1, 2});
  const std::string msg = error_of(dir.file("train-images-idx3-ubyte"), 2051);
  EXPECT_NE(msg.find("train-images-idx3-ubyte: bad magic 2049 (expected 2051"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("labels file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scripts/download_mnist.sh"), std::string::npos) << msg;
}

TEST(IdxTest, RejectsGarbageMagic) {
  TempDir dir;
  test::write_bytes(dir.file("x"), {'h', 'e', 'l', 'l', 'o', '!', '!', '!'});
  const std::string msg = error_of(dir.file("x"), 2049);
  EXPECT_NE(msg.find("bad magic"), std::string::npos) << msg;
}

TEST(IdxTest, RejectsTruncatedData) {
  TempDir dir;
  write_idx(dir.file("img"), 2051, {3, 28, 28}, ramp(2 * 784 + 100));
  const std::string msg = error_of(dir.file("img"), 2051);
  EXPECT_NE(msg.find("promises 3 records (2352 data bytes)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("holds 1668 data bytes (2 whole records)"), std::string::npos) << msg;
}

TEST(IdxTest, RejectsTruncatedGzip) {
  TempDir dir;
  write_idx(dir.file("img.gz"), 2051, {3, 28, 28}, ramp(2 * 784), /*gzip=*/true);
  EXPECT_NE(error_of(dir.file("img.gz"), 2051).find("promises 3 records"), std::string::npos);
}

TEST(IdxTest, RejectsTruncatedHeader) {
  TempDir dir;
  test::write_bytes(dir.file("img"), {0, 0, 8, 3, 0, 0});
  const std::string msg = error_of(dir.file("img"), 2051);
  EXPECT_NE(msg.find("truncated header"), std::string::npos) << msg;
  test::write_bytes(dir.file("empty"), {});
  EXPECT_NE(error_of(dir.file("empty"), 2051).find("truncated: 0 bytes"), std::string::npos);
}

TEST(IdxTest, RejectsWrongDimensions) {
  TempDir dir;
  write_idx(dir.file("img"), 2051, {2, 32, 32}, ramp(2 * 32 * 32));
  const std::string msg = error_of(dir.file("img"), 2051);
  EXPECT_NE(msg.find("wrong dimensions 2x32x32 (expected Nx28x28)"), std::string::npos) << msg;
}

TEST(IdxTest, RejectsExtraDataAsCountMismatch) {
  TempDir dir;
  write_idx(dir.file("lab"), 2049, {3}, {1, 2, 3, 4});
  const std::string msg = error_of(dir.file("lab"), 2049);
  EXPECT_NE(msg.find("record count mismatch: the header promises 3 records"), std::string::npos)
      << msg;
}

TEST(IdxTest, RejectsHugeClaimedCountWithoutAllocatingIt) {
  TempDir dir;
  write_idx(dir.file("img"), 2051, {0x7fffffffU, 28, 28}, ramp(1000));
  const std::string msg = error_of(dir.file("img"), 2051);
  EXPECT_NE(msg.find("promises 2147483647 records"), std::string::npos) << msg;
}

TEST(IdxTest, RejectsLabelOutOfRange) {
  TempDir dir;
  write_idx(dir.file("lab"), 2049, {3}, {1, 12, 3});
  try {
    read_idx_labels(dir.file("lab"));
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("label 12 at record 1 is out of range (expected 0..9)"),
              std::string::npos)
        << e.what();
  }
}

TEST(IdxTest, MissingFileNamesPathAndFix) {
  const std::string msg = error_of("/nonexistent/t10k-images-idx3-ubyte", 2051);
  EXPECT_NE(msg.find("/nonexistent/t10k-images-idx3-ubyte: cannot open"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scripts/download_mnist.sh"), std::string::npos) << msg;
}

TEST(IdxTest, CorruptGzipIsADataError) {
  TempDir dir;
  std::vector<uint8_t> bytes = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
  bytes.resize(200, 0xAB);
  test::write_bytes(dir.file("img.gz"), bytes);
  EXPECT_FALSE(error_of(dir.file("img.gz"), 2051).empty());
}

}  // namespace
}  // namespace mnist
