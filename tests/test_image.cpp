// Digit images: decoding (PNG, PGM, alpha), inversion and MNIST-style
// cropping, scaling and centring.
#include "mnist/image.hpp"

#include <gtest/gtest.h>

#include <stb_image_write.h>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

TEST(ImageTest, ReadsPgmAndInverts) {
  test::TempDir dir;
  // 4x2 binary PGM: one dark pixel on white.
  std::vector<uint8_t> pgm = {'P', '5', '\n', '4', ' ', '2', '\n', '2', '5', '5', '\n'};
  const std::vector<uint8_t> pixels = {255, 255, 0, 255, 255, 255, 255, 255};
  pgm.insert(pgm.end(), pixels.begin(), pixels.end());
  test::write_bytes(dir.file("d.pgm"), pgm);
  const at::Tensor ink = read_gray_image(dir.file("d.pgm"), /*dark_ink=*/true);
  EXPECT_EQ(ink.sizes(), (at::IntArrayRef{2, 4}));
  EXPECT_FLOAT_EQ(ink[0][2].item<float>(), 1.0F);
  EXPECT_FLOAT_EQ(ink[1][0].item<float>(), 0.0F);
}

TEST(ImageTest, TransparentPixelsAreBackground) {
  test::TempDir dir;
  // 2x1 gray+alpha PNG: an opaque black pixel, then a transparent one.
  const std::vector<uint8_t> ga = {0, 255, 0, 0};
  ASSERT_NE(stbi_write_png(dir.file("a.png").c_str(), 2, 1, 2, ga.data(), 4), 0);
  const at::Tensor ink = read_gray_image(dir.file("a.png"), /*dark_ink=*/true);
  EXPECT_FLOAT_EQ(ink[0][0].item<float>(), 1.0F);
  EXPECT_FLOAT_EQ(ink[0][1].item<float>(), 0.0F);
}

TEST(ImageTest, MnistStyleFitsTwentyPixelsAndCentresTheMass) {
  at::Tensor ink = at::zeros({100, 60});
  ink.slice(0, 10, 90).slice(1, 5, 25).fill_(1.0);  // an 80x20 bar, off centre
  const at::Tensor out = mnist_style(ink, "bar");
  EXPECT_EQ(out.sizes(), (at::IntArrayRef{1, 1, 28, 28}));
  const at::Tensor img = out[0][0];
  const at::Tensor rows = (img > 0.5).any(1).nonzero();
  EXPECT_EQ(rows.max().item<int64_t>() - rows.min().item<int64_t>() + 1, 20);
  const double mass = img.sum().item<double>();
  const double cy = (img.sum(1) * at::arange(28, at::kFloat)).sum().item<double>() / mass;
  const double cx = (img.sum(0) * at::arange(28, at::kFloat)).sum().item<double>() / mass;
  EXPECT_NEAR(cy, 13.5, 0.6);
  EXPECT_NEAR(cx, 13.5, 0.6);
}

TEST(ImageTest, BlankImagesAndBadFilesAreDataErrors) {
  try {
    mnist_style(at::zeros({28, 28}), "blank.png");
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("no digit found"), std::string::npos);
    // The remedy (invert the image) travels with the error; the CLI words it
    // as --invert (tested end to end: bad_input.predict_blank_image).
    EXPECT_EQ(e.remedy(), Remedy::kInvertImage);
  }
  test::TempDir dir;
  test::write_bytes(dir.file("x.png"), {1, 2, 3});
  EXPECT_THROW(read_gray_image(dir.file("x.png"), false), DataError);
  EXPECT_THROW(read_gray_image(dir.file("missing.png"), false), DataError);
}

}  // namespace
}  // namespace mnist
