// Digit images: decoding (every PNG colour type, bit depth, palette and
// interlacing; PGM P2/P5; transparency), the limits checked before decoding,
// the errors for other formats and broken files, inversion, and MNIST-style
// cropping, scaling and centring.
#include "mnist/image.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "png_util.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

std::string decode_error(const std::vector<uint8_t>& bytes) {
  try {
    decode_gray_image(bytes.data(), bytes.size(), "x.img", /*dark_ink=*/false);
  } catch (const DataError& e) {
    return e.what();
  }
  return "no error";
}

at::Tensor decode(const std::vector<uint8_t>& bytes, bool dark_ink) {
  return decode_gray_image(bytes.data(), bytes.size(), "x.img", dark_ink);
}

TEST(ImageTest, ReadsPgmAndInverts) {
  test::TempDir dir;
  // 4x2 binary PGM: one dark pixel on white.
  std::vector<uint8_t> pgm = {'P', '5', '\n', '4', ' ', '2', '\n', '2', '5', '5', '\n'};
  const std::vector<uint8_t> pixels = {255, 255, 0, 255, 255, 255, 255, 255};
  pgm.insert(pgm.end(), pixels.begin(), pixels.end());
  test::write_bytes(dir.file("d.pgm"), pgm);
  const at::Tensor ink = read_gray_image(dir.file("d.pgm"), /*dark_ink=*/true);
  EXPECT_EQ(ink.scalar_type(), at::kByte);
  EXPECT_EQ(ink.sizes(), (at::IntArrayRef{2, 4}));
  EXPECT_EQ(ink[0][2].item<int>(), 255);
  EXPECT_EQ(ink[1][0].item<int>(), 0);
}

TEST(ImageTest, ReadsPlainAndSixteenBitPgm) {
  const std::string plain = "P2\n# a comment\n3 1 # more\n15\n0 15\n7\n";
  const at::Tensor a = decode({plain.begin(), plain.end()}, false);
  EXPECT_EQ(a.sizes(), (at::IntArrayRef{1, 3}));
  EXPECT_EQ(a[0][0].item<int>(), 0);
  EXPECT_EQ(a[0][1].item<int>(), 255);
  EXPECT_EQ(a[0][2].item<int>(), 119);  // 7/15 of 255, rounded
  std::vector<uint8_t> wide = {'P', '5', ' ', '2', ' ', '1', ' ', '6', '5', '5', '3', '5', '\n'};
  wide.insert(wide.end(), {0xFF, 0xFF, 0x80, 0x00});  // big-endian 65535, 32768
  const at::Tensor b = decode(wide, false);
  EXPECT_EQ(b[0][0].item<int>(), 255);
  EXPECT_EQ(b[0][1].item<int>(), 128);
  EXPECT_NE(decode_error({'P', '2', ' ', '1', ' ', '1', ' ', '9', ' ', '1', '0'})
                .find("pixel 0 is 10, above the maximum value 9"),
            std::string::npos);
  EXPECT_NE(decode_error({'P', '5', ' ', '2', ' ', '2', ' ', '2', '5', '5', '\n', 1, 2, 3})
                .find("truncated: 3 bytes of pixels, 4 expected"),
            std::string::npos);
  EXPECT_NE(decode_error({'P', '5', ' ', '2', ' '}).find("header is truncated: no height"),
            std::string::npos);
  EXPECT_NE(decode_error({'P', '2', ' ', '2', ' ', '1', ' ', '9', ' ', '1'})
                .find("truncated: 1 of its 2 pixels"),
            std::string::npos);
}

// The ink (255 = ink) a pixel of luma l and alpha a must give.
int expected_ink(int l, int a, bool dark_ink) {
  const int background = dark_ink ? 255 : 0;
  const int gray = (l * a + background * (255 - a) + 127) / 255;
  return dark_ink ? 255 - gray : gray;
}

TEST(ImageTest, EveryPngKindDecodesToItsPixels) {
  for (const test::PngKind& k : test::kPngKinds) {
    const test::PngSample s = test::make_png_sample(k);
    const std::vector<uint8_t> png = test::encode_png(s.png);
    for (const bool dark_ink : {false, true}) {
      const at::Tensor ink = decode(png, dark_ink);
      ASSERT_EQ(ink.sizes(), (at::IntArrayRef{9, 13})) << k.name;
      const uint8_t* p = ink.data_ptr<uint8_t>();
      int wrong = 0;
      for (size_t i = 0; i < s.luma.size(); ++i) {
        wrong += p[i] != expected_ink(s.luma[i], s.alpha[i], dark_ink) ? 1 : 0;
      }
      EXPECT_EQ(wrong, 0) << k.name << (dark_ink ? " dark ink" : "") << ": first pixel "
                          << int{p[0]} << " expected "
                          << expected_ink(s.luma[0], s.alpha[0], dark_ink);
    }
  }
}

TEST(ImageTest, TransparentPixelsAreBackground) {
  test::PngImage img;  // 2x1 gray+alpha: an opaque black pixel, then a transparent one
  img.width = 2;
  img.height = 1;
  img.color_type = 4;
  img.samples = {0, 255, 0, 0};
  const at::Tensor ink = decode(test::encode_png(img), /*dark_ink=*/true);
  EXPECT_EQ(ink[0][0].item<int>(), 255);
  EXPECT_EQ(ink[0][1].item<int>(), 0);
}

TEST(ImageTest, SizesOverTheLimitsAreRefusedFromTheHeader) {
  const std::vector<uint8_t> zeros(64, 0);
  const std::vector<uint8_t> small = test::gray_png(8, 8, zeros.data());
  EXPECT_EQ(decode(small, false).sizes(), (at::IntArrayRef{8, 8}));
  // The header of a decompression bomb; its pixels are never looked at.
  EXPECT_NE(
      decode_error(test::claim_size(small, 20000, 20000)).find("20000x20000 pixels, more than"),
      std::string::npos);
  EXPECT_NE(decode_error(test::claim_size(small, 4097, 4096)).find("4097x4096"), std::string::npos);
  EXPECT_NE(decode_error(test::claim_size(small, 16385, 1)).find("16385x1"), std::string::npos);
  const std::string pgm = "P5 100000 100000 255\n";
  EXPECT_NE(decode_error({pgm.begin(), pgm.end()}).find("100000x100000 pixels, more than"),
            std::string::npos);
  const std::string none = "P5 0 7 255\n";
  EXPECT_NE(decode_error({none.begin(), none.end()}).find("0x7 pixels: it has none"),
            std::string::npos);
}

TEST(ImageTest, OtherFormatsAndBrokenFilesSayWhy) {
  EXPECT_NE(decode_error({0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10})
                .find("a JPEG image: only PNG and PGM (P2, P5) images are read"),
            std::string::npos);
  EXPECT_NE(decode_error({'G', 'I', 'F', '8', '9', 'a'}).find("a GIF image"), std::string::npos);
  EXPECT_NE(decode_error({'B', 'M', 0, 0}).find("a BMP image"), std::string::npos);
  EXPECT_NE(decode_error({'P', '6', '\n'}).find("a PPM (colour) image"), std::string::npos);
  EXPECT_NE(decode_error({1, 2, 3}).find("not a PNG or PGM image (its first bytes are 01 02 03)"),
            std::string::npos);
  EXPECT_NE(decode_error({}).find("the file is empty"), std::string::npos);

  std::vector<uint8_t> gray(20 * 20);
  for (size_t i = 0; i < gray.size(); ++i) {
    gray[i] = static_cast<uint8_t>(i * 7);
  }
  const std::vector<uint8_t> png = test::gray_png(20, 20, gray.data());
  for (const size_t keep : {size_t{8}, size_t{20}, size_t{40}, png.size() - 20}) {
    const std::string why = decode_error({png.begin(), png.begin() + static_cast<long>(keep)});
    EXPECT_TRUE(why.find("truncated") != std::string::npos ||
                why.find("not a valid PNG file: ") != std::string::npos)
        << keep << ": " << why;
    EXPECT_EQ(why.find("()"), std::string::npos) << why;  // never an empty reason
  }
  std::vector<uint8_t> bad_crc = png;
  bad_crc[30] ^= 0xFF;
  EXPECT_NE(decode_error(bad_crc).find("not a valid PNG file: "), std::string::npos);
}

TEST(ImageTest, FilesAreBoundedAndErrorsNameThem) {
  test::TempDir dir;
  const std::string big = dir.file("big.png");
  std::FILE* f = std::fopen(big.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(ftruncate(fileno(f), kMaxImageFileBytes + 1), 0);  // sparse: costs no disk
  std::fclose(f);
  for (const auto& [path, why] : std::vector<std::pair<std::string, std::string>>{
           {big, "more than the 64 MiB an image may have here"},
           {dir.file("missing.png"), "cannot open the image: No such file or directory"},
           {dir.path().string(), "not a regular file"}}) {
    try {
      read_gray_image(path, false);
      ADD_FAILURE() << path;
    } catch (const DataError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0U) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
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
  // The same image as uint8 ink gives the same digit.
  const at::Tensor bytes = (ink * 255).to(at::kByte);
  EXPECT_TRUE(at::allclose(mnist_style(bytes, "bar"), out, 0, 1e-6));
}

TEST(ImageTest, ShrinkingInBandsIsAreaAveraging) {
  // A 1000x700 digit (more rows than one band): the banded shrink equals
  // libtorch's adaptive average pooling of the whole image as floats.
  at::manual_seed(3);
  const at::Tensor ink = (at::rand({1000, 700}) * 255).to(at::kByte);
  ink.select(0, 0).fill_(255);  // ink reaches every side: no crop
  ink.select(0, 999).fill_(255);
  ink.select(1, 0).fill_(255);
  ink.select(1, 699).fill_(255);
  const at::Tensor ours = mnist_style(ink, "big");
  const at::Tensor reference =
      at::adaptive_avg_pool2d((ink.to(at::kFloat) / 255.0).unsqueeze(0).unsqueeze(0), {20, 14})
          .clamp(0.0, 1.0)[0][0];
  // The placement is the same, so compare the 20x14 block where it lands.
  const at::Tensor nz = (ours[0][0] > 0).nonzero();
  const int64_t y0 = nz.select(1, 0).min().item<int64_t>();
  const int64_t x0 = nz.select(1, 1).min().item<int64_t>();
  const at::Tensor block = ours[0][0].slice(0, y0, y0 + 20).slice(1, x0, x0 + 14);
  EXPECT_LT((block - reference).abs().max().item<double>(), 1e-5);
  EXPECT_NEAR(ours.sum().item<double>(), reference.sum().item<double>(), 1e-3);
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
}

}  // namespace
}  // namespace mnist
