// Image files: digit images (every PNG colour type, bit depth, palette and
// interlacing; PGM P2/P5; JPEG; transparency), the limits checked before
// decoding, the errors for other formats and broken files, inversion, and
// MNIST-style cropping, scaling and centring; dataset records as TensorFlow
// decodes them (PNG by libpng's numbers, JPEG against libjpeg-turbo's djpeg
// with TF's settings) and resizes them (against real TF.js).
#include "mnist/image.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <tuple>
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
                .find("the JPEG file is truncated or damaged ("),
            std::string::npos);
  EXPECT_NE(decode_error({'G', 'I', 'F', '8', '9', 'a'}).find("a GIF image"), std::string::npos);
  EXPECT_NE(decode_error({'B', 'M', 0, 0}).find("a BMP image"), std::string::npos);
  EXPECT_NE(decode_error({'P', '6', '\n'}).find("a PPM (colour) image"), std::string::npos);
  EXPECT_NE(
      decode_error({1, 2, 3}).find("not a PNG, JPEG or PGM image (its first bytes are 01 02 03)"),
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

// --- Dataset records ----------------------------------------------------------

std::vector<uint8_t> read_fixture(const std::string& name) {
  std::ifstream in(std::string(MNIST_TEST_DATA_DIR) + "/jpeg/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The pixels of a binary PGM (P5) or PPM (P6) as djpeg writes them: the
/// header "P5\nW H\n255\n", then the samples.
std::vector<uint8_t> pnm_pixels(const std::vector<uint8_t>& file, int64_t* height, int64_t* width) {
  const std::string text(file.begin(), file.end());
  size_t pos = 2;
  const auto next = [&]() {
    pos = text.find_first_not_of(" \n", pos);
    const size_t end = text.find_first_of(" \n", pos);
    const int64_t v = std::stoll(text.substr(pos, end - pos));
    pos = end;
    return v;
  };
  *width = next();
  *height = next();
  next();  // 255
  return {file.begin() + static_cast<long>(pos) + 1, file.end()};
}

std::vector<uint8_t> record(const std::vector<uint8_t>& bytes, const ImageSpec& spec) {
  std::vector<uint8_t> out(
      static_cast<size_t>(spec.height * spec.width * channels_of(spec.color_mode)));
  decode_for_dataset(bytes.data(), bytes.size(), "x.img", spec, out.data());
  return out;
}

ImageSpec spec_of(int64_t height,
                  int64_t width,
                  ColorMode mode,
                  Interpolation interpolation = Interpolation::kBilinear,
                  bool crop = false) {
  ImageSpec spec;
  spec.height = height;
  spec.width = width;
  spec.color_mode = mode;
  spec.interpolation = interpolation;
  spec.crop_to_aspect_ratio = crop;
  return spec;
}

std::string record_error(const std::vector<uint8_t>& bytes, ColorMode mode = ColorMode::kRgb) {
  try {
    record(bytes, spec_of(4, 4, mode));
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("x.img: ", 0), 0U) << e.what();
    return e.what();
  }
  return "no error";
}

TEST(ImageOptionsTest, KerasNamesRoundTrip) {
  for (const ColorMode m : {ColorMode::kGrayscale, ColorMode::kRgb}) {
    EXPECT_EQ(parse_color_mode(color_mode_name(m)), m);
  }
  EXPECT_EQ(channels_of(ColorMode::kGrayscale), 1);
  EXPECT_EQ(channels_of(ColorMode::kRgb), 3);
  EXPECT_EQ(std::string(color_mode_name(ColorMode::kRgb)), "rgb");
  EXPECT_FALSE(parse_color_mode("rgba").has_value());
  EXPECT_FALSE(parse_color_mode("RGB").has_value());
  for (const Interpolation i : {Interpolation::kBilinear, Interpolation::kNearest}) {
    EXPECT_EQ(parse_interpolation(interpolation_name(i)), i);
  }
  EXPECT_EQ(std::string(interpolation_name(Interpolation::kBilinear)), "bilinear");
  EXPECT_FALSE(parse_interpolation("bicubic").has_value());
}

/// seq(h, w, c, k) of tests/node/resize_reference.js: byte i is (i * k + 7) % 251.
std::vector<uint8_t> seq(int64_t h, int64_t w, int c, int k) {
  std::vector<uint8_t> v(static_cast<size_t>(h * w * c));
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<uint8_t>((static_cast<int64_t>(i) * k + 7) % 251);
  }
  return v;
}

struct ResizeCase {
  const char* name;
  int64_t h, w;
  int c, k;
  int64_t out_h, out_w;
  bool crop;
  CropBox box;
  std::vector<float> bilinear;  // TF.js's resizeBilinear(x, out, false, true)
  std::vector<int> nearest;     // TF.js's resizeNearestNeighbor(x, out, false, true)
};

// Printed by tests/node/resize_reference.js (real TF.js 4.22, CPU backend).
const std::vector<ResizeCase>& resize_cases() {
  static const std::vector<ResizeCase> cases = {
      {"gray_up_rows_down_cols",
       3,
       5,
       1,
       37,
       7,
       4,
       false,
       {0, 0, 3, 5},
       {11.625f,
        57.875f,
        104.125f,
        150.375f,
        38.05356979370117f,
        70.85713958740234f,
        94.69642639160156f,
        140.94642639160156f,
        117.33928680419922f,
        109.80357360839844f,
        66.41071319580078f,
        112.66071319580078f,
        196.625f,
        148.75f,
        38.125f,
        84.375f,
        168.3392791748047f,
        160.80357360839844f,
        117.41071319580078f,
        69.53571319580078f,
        140.05357360839844f,
        172.85714721679688f,
        196.69642639160156f,
        54.69643020629883f,
        130.625f,
        176.875f,
        223.125f,
        49.75f},
       {7,  44, 118, 155, 7,  44, 118, 155, 192, 229, 52,  89,  192, 229,
        52, 89, 192, 229, 52, 89, 126, 163, 237, 23,  126, 163, 237, 23}},
      {"rgb_down",
       4,
       4,
       3,
       53,
       2,
       3,
       false,
       {0, 0, 4, 4},
       {79.58333587646484f, 132.5833282470703f, 164.6666717529297f, 124.25f, 114.5f, 104.75f,
        168.9166717529297f, 96.41666412353516f, 149.4166717529297f, 96.58333587646484f,
        149.5833282470703f, 77.08333587646484f, 141.25f, 131.5f, 121.75f, 185.9166717529297f,
        113.41666412353516f, 166.4166717529297f},
       {141, 194, 247, 208, 10, 63, 116, 169, 222, 158, 211, 13, 225, 27, 80, 133, 186, 239}},
      {"rgb_up_odd",
       5,
       3,
       3,
       29,
       7,
       4,
       false,
       {0, 0, 5, 3},
       {7,
        36,
        65,
        61.375f,
        90.375f,
        119.375f,
        126.625f,
        155.625f,
        184.625f,
        181,
        210,
        239,
        12.714285850524902f,
        41.71428680419922f,
        70.71428680419922f,
        67.08928680419922f,
        96.08928680419922f,
        125.08928680419922f,
        132.3392791748047f,
        161.3392791748047f,
        190.3392791748047f,
        186.7142791748047f,
        215.7142791748047f,
        244.7142791748047f,
        19.85714340209961f,
        48.85714340209961f,
        77.85713958740234f,
        74.23213958740234f,
        103.23213958740234f,
        132.23214721679688f,
        139.48214721679688f,
        168.48214721679688f,
        170.5892791748047f,
        193.85714721679688f,
        222.85714721679688f,
        180.14285278320312f,
        27,
        56,
        85,
        81.375f,
        110.375f,
        139.375f,
        146.625f,
        175.625f,
        110.5f,
        201,
        230,
        8,
        34.14285659790039f,
        63.14285659790039f,
        92.14286041259766f,
        88.51786041259766f,
        117.51786041259766f,
        146.51785278320312f,
        153.76785278320312f,
        182.76785278320312f,
        117.64286041259766f,
        208.14285278320312f,
        237.14285278320312f,
        15.142857551574707f,
        41.28571319580078f,
        70.28571319580078f,
        99.28571319580078f,
        95.66071319580078f,
        124.66071319580078f,
        153.6607208251953f,
        160.9107208251953f,
        189.9107208251953f,
        124.78571319580078f,
        215.2857208251953f,
        244.2857208251953f,
        22.285715103149414f,
        47,
        76,
        105,
        101.375f,
        130.375f,
        159.375f,
        166.625f,
        195.625f,
        130.5f,
        221,
        250,
        28},
       {7,   36,  65,  94,  123, 152, 94,  123, 152, 181, 210, 239, 17,  46,  75,  104, 133,
        162, 104, 133, 162, 191, 220, 249, 17,  46,  75,  104, 133, 162, 104, 133, 162, 191,
        220, 249, 27,  56,  85,  114, 143, 172, 114, 143, 172, 201, 230, 8,   37,  66,  95,
        124, 153, 182, 124, 153, 182, 211, 240, 18,  37,  66,  95,  124, 153, 182, 124, 153,
        182, 211, 240, 18,  47,  76,  105, 134, 163, 192, 134, 163, 192, 221, 250, 28}},
      {"gray_one_pixel_up",
       1,
       1,
       1,
       1,
       3,
       2,
       false,
       {0, 0, 1, 1},
       {7, 7, 7, 7, 7, 7},
       {7, 7, 7, 7, 7, 7}},
      {"gray_to_one_pixel", 8, 6, 1, 97, 1, 1, false, {0, 0, 8, 6}, {90.25f}, {116}},
      {"rgb_crop_wide",
       7,
       10,
       3,
       41,
       4,
       4,
       true,
       {0, 1, 7, 7},
       {107.921875f, 113.625f,    154.625f,    131,      140.625f,    181.625f,    126.625f,
        136.25f,     177.25f,     153.625f,    100.5f,   141.5f,      123,         164,
        110.875f,    87.25f,      128.25f,     137.875f, 82.875f,     123.875f,    133.5f,
        109.875f,    150.875f,    109.515625f, 79.25f,   120.25f,     149.484375f, 43.5f,
        84.5f,       121.578125f, 39.125f,     80.125f,  117.203125f, 66.125f,     107.125f,
        148.125f,    133.546875f, 76.5f,       117.5f,   137.015625f, 40.75f,      81.75f,
        215,         36.375f,     77.375f,     179.25f,  63.375f,     104.375f},
       {130, 171, 212, 125, 166, 207, 120, 161, 202, 115, 156, 197, 80, 121, 162, 75,
        116, 157, 70,  111, 152, 65,  106, 147, 30,  71,  112, 25,  66, 107, 20,  61,
        102, 15,  56,  97,  231, 21,  62,  226, 16,  57,  221, 11,  52, 216, 6,   47}},
      {"gray_crop_tall",
       11,
       4,
       1,
       23,
       3,
       5,
       true,
       {4, 0, 2, 4},
       {124, 140.10000610351562f, 158.5f, 176.89999389648438f, 193, 170, 186.10000610351562f,
        141.75f, 97.4000015258789f, 113.5f, 216, 232.10000610351562f, 125, 17.899999618530273f, 34},
       {124, 147, 170, 170, 193, 216, 239, 11, 11, 34, 216, 239, 11, 11, 34}},
  };
  return cases;
}

TEST(ResizeTest, ValuesAreRealTfjss) {
  for (const ResizeCase& t : resize_cases()) {
    const std::vector<uint8_t> image = seq(t.h, t.w, t.c, t.k);
    CropBox box{0, 0, t.h, t.w};
    if (t.crop) {
      box = aspect_crop(t.h, t.w, t.out_h, t.out_w);
      EXPECT_EQ(box.top, t.box.top) << t.name;
      EXPECT_EQ(box.left, t.box.left) << t.name;
      EXPECT_EQ(box.height, t.box.height) << t.name;
      EXPECT_EQ(box.width, t.box.width) << t.name;
    }
    const uint8_t* start = image.data() + (box.top * t.w + box.left) * t.c;
    std::vector<float> out(static_cast<size_t>(t.out_h * t.out_w * t.c));
    resize_image(start, box.height, box.width, t.w * t.c, t.c, t.out_h, t.out_w,
                 Interpolation::kBilinear, out.data());
    ASSERT_EQ(out.size(), t.bilinear.size()) << t.name;
    for (size_t i = 0; i < out.size(); ++i) {
      // TF.js lerps in float64 before storing float32; TF and we lerp in float32.
      EXPECT_NEAR(out[i], t.bilinear[i], 1e-4) << t.name << " value " << i;
    }
    resize_image(start, box.height, box.width, t.w * t.c, t.c, t.out_h, t.out_w,
                 Interpolation::kNearest, out.data());
    for (size_t i = 0; i < out.size(); ++i) {
      EXPECT_EQ(out[i], static_cast<float>(t.nearest[i])) << t.name << " value " << i;
    }
  }
}

TEST(ResizeTest, DatasetRecordsAreTfjssValuesRounded) {
  for (const ResizeCase& t : resize_cases()) {
    test::PngImage img;
    img.width = static_cast<uint32_t>(t.w);
    img.height = static_cast<uint32_t>(t.h);
    img.color_type = t.c == 1 ? 0 : 2;
    const std::vector<uint8_t> pixels = seq(t.h, t.w, t.c, t.k);
    img.samples.assign(pixels.begin(), pixels.end());
    const std::vector<uint8_t> png = test::encode_png(img);
    const ColorMode mode = t.c == 1 ? ColorMode::kGrayscale : ColorMode::kRgb;
    const std::vector<uint8_t> bilinear =
        record(png, spec_of(t.out_h, t.out_w, mode, Interpolation::kBilinear, t.crop));
    const std::vector<uint8_t> nearest =
        record(png, spec_of(t.out_h, t.out_w, mode, Interpolation::kNearest, t.crop));
    for (size_t i = 0; i < bilinear.size(); ++i) {
      const float v = t.bilinear[i];
      if (std::abs(v - std::floor(v) - 0.5F) < 1e-3F) {  // a half: to even, within TF.js's noise
        EXPECT_NEAR(bilinear[i], v, 0.5 + 1e-3) << t.name << " value " << i;
      } else {
        EXPECT_EQ(bilinear[i], static_cast<int>(std::lround(v))) << t.name << " value " << i;
      }
      EXPECT_EQ(nearest[i], t.nearest[i]) << t.name << " value " << i;
    }
  }
  // An exact half rounds to even: 1x2 [1, 2] -> 1x1 is 1.5 -> 2, [2, 3] -> 2.5 -> 2.
  for (const auto& [a, b, rounded] : std::vector<std::array<int, 3>>{{1, 2, 2}, {2, 3, 2}}) {
    const uint8_t row[2] = {static_cast<uint8_t>(a), static_cast<uint8_t>(b)};
    EXPECT_EQ(record(test::gray_png(2, 1, row), spec_of(1, 1, ColorMode::kGrayscale))[0], rounded);
  }
}

TEST(ResizeTest, AnImageAtTheSizeIsCopiedAndCropBoxesFollowKeras) {
  const std::vector<uint8_t> pixels = seq(5, 7, 1, 13);
  const std::vector<uint8_t> png = test::gray_png(7, 5, pixels.data());
  for (const Interpolation i : {Interpolation::kBilinear, Interpolation::kNearest}) {
    EXPECT_EQ(record(png, spec_of(5, 7, ColorMode::kGrayscale, i)), pixels);
    EXPECT_EQ(record(png, spec_of(5, 7, ColorMode::kGrayscale, i, /*crop=*/true)), pixels);
  }
  // Keras's centred box: 100x50 to a square keeps rows 25..75; a 3x1000
  // strip to 1000x1 keeps one column (at least 1 pixel), the middle one.
  const CropBox a = aspect_crop(100, 50, 10, 10);
  EXPECT_EQ((std::array<int64_t, 4>{a.top, a.left, a.height, a.width}),
            (std::array<int64_t, 4>{25, 0, 50, 50}));
  const CropBox b = aspect_crop(3, 1000, 1000, 1);
  EXPECT_EQ((std::array<int64_t, 4>{b.top, b.left, b.height, b.width}),
            (std::array<int64_t, 4>{0, 499, 3, 1}));
  const CropBox c = aspect_crop(480, 640, 224, 224);
  EXPECT_EQ((std::array<int64_t, 4>{c.top, c.left, c.height, c.width}),
            (std::array<int64_t, 4>{0, 80, 480, 480}));
  // A spec outside 1..kMaxImageSide is the caller's mistake, not the file's.
  EXPECT_THROW(record(png, spec_of(0, 7, ColorMode::kGrayscale)), ConfigError);
  const ImageSpec too_many = spec_of(kMaxImageSide, kMaxImageSide, ColorMode::kGrayscale);
  std::vector<uint8_t> unused(1);
  EXPECT_THROW(decode_for_dataset(png.data(), png.size(), "x.png", too_many, unused.data()),
               ConfigError);
}

TEST(PngDatasetTest, ChannelsAsTensorFlowsLibpngGivesThem) {
  // 8-bit RGBA: alpha is dropped (png_set_strip_alpha), even where it is 0;
  // gray is libpng's (9797 R + 19234 G + 3737 B) >> 15, equal R, G, B kept.
  test::PngImage rgba;
  rgba.width = 6;
  rgba.height = 1;
  rgba.color_type = 6;
  rgba.samples = {255, 0,   0,  255, 0,  255, 0,  0, 0,   0,   255, 128,
                  10,  200, 30, 255, 77, 77,  77, 9, 200, 100, 50,  255};
  const std::vector<uint8_t> png = test::encode_png(rgba);
  EXPECT_EQ(record(png, spec_of(1, 6, ColorMode::kGrayscale)),
            (std::vector<uint8_t>{76, 149, 29, 123, 77, 124}));
  EXPECT_EQ(record(png, spec_of(1, 6, ColorMode::kRgb)),
            (std::vector<uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30, 77, 77, 77, 200,
                                  100, 50}));
  // 16-bit RGB: gray rounded at 16 bits, then the high byte (png_set_strip_16).
  test::PngImage wide;
  wide.width = 3;
  wide.height = 1;
  wide.color_type = 2;
  wide.bit_depth = 16;
  wide.samples = {65535, 0, 0, 0x1234, 0xABCD, 0x0F0F, 0x80FF, 0x80FF, 0x80FF};
  EXPECT_EQ(record(test::encode_png(wide), spec_of(1, 3, ColorMode::kGrayscale)),
            (std::vector<uint8_t>{76, 108, 128}));
  EXPECT_EQ(record(test::encode_png(wide), spec_of(1, 3, ColorMode::kRgb)),
            (std::vector<uint8_t>{255, 0, 0, 18, 171, 15, 128, 128, 128}));
  // Gray + alpha as RGB: replicated, alpha dropped. 2-bit gray: v * 85.
  test::PngImage ga;
  ga.width = 2;
  ga.height = 1;
  ga.color_type = 4;
  ga.samples = {40, 0, 200, 255};
  EXPECT_EQ(record(test::encode_png(ga), spec_of(1, 2, ColorMode::kRgb)),
            (std::vector<uint8_t>{40, 40, 40, 200, 200, 200}));
  test::PngImage g2;
  g2.width = 4;
  g2.height = 1;
  g2.color_type = 0;
  g2.bit_depth = 2;
  g2.samples = {0, 1, 2, 3};
  EXPECT_EQ(record(test::encode_png(g2), spec_of(1, 4, ColorMode::kGrayscale)),
            (std::vector<uint8_t>{0, 85, 170, 255}));
  // A palette (with tRNS, ignored) as gray: expanded, then libpng's formula.
  test::PngImage pal;
  pal.width = 2;
  pal.height = 1;
  pal.color_type = 3;
  pal.samples = {1, 0};
  pal.palette = {{{255, 0, 0}}, {{10, 200, 30}}};
  pal.palette_alpha = {0, 0};
  EXPECT_EQ(record(test::encode_png(pal), spec_of(1, 2, ColorMode::kGrayscale)),
            (std::vector<uint8_t>{123, 76}));
  EXPECT_EQ(record(test::encode_png(pal), spec_of(1, 2, ColorMode::kRgb)),
            (std::vector<uint8_t>{10, 200, 30, 255, 0, 0}));
  const ImageHeader h = read_image_header(png.data(), png.size(), "x.png");
  EXPECT_EQ(h.format, "png");
  EXPECT_EQ(h.height, 1);
  EXPECT_EQ(h.width, 6);
  EXPECT_EQ(h.channels, 3);
  const std::vector<uint8_t> gray_alpha = test::encode_png(ga);
  EXPECT_EQ(read_image_header(gray_alpha.data(), gray_alpha.size(), "x.png").channels, 1);
}

TEST(JpegTest, PixelsAreLibjpegsWithTensorFlowsSettings) {
  // tests/data/jpeg/make_jpegs.py: JPEGs written by PIL, and what djpeg
  // -dct fast (TF's JDCT_IFAST, fancy upsampling) decodes from them.
  for (const auto& [jpg, pnm, mode] : std::vector<std::tuple<const char*, const char*, ColorMode>>{
           {"rgb420.jpg", "rgb420.ppm", ColorMode::kRgb},
           {"rgb420.jpg", "rgb420.gray.pgm", ColorMode::kGrayscale},
           {"rgb444_progressive.jpg", "rgb444_progressive.ppm", ColorMode::kRgb},
           {"gray.jpg", "gray.pgm", ColorMode::kGrayscale}}) {
    int64_t height = 0;
    int64_t width = 0;
    const std::vector<uint8_t> expected = pnm_pixels(read_fixture(pnm), &height, &width);
    const std::vector<uint8_t> bytes = read_fixture(jpg);
    EXPECT_EQ(record(bytes, spec_of(height, width, mode)), expected) << jpg << " as " << pnm;
    const ImageHeader h = read_image_header(bytes.data(), bytes.size(), jpg);
    EXPECT_EQ(h.format, "jpeg");
    EXPECT_EQ(h.height, height);
    EXPECT_EQ(h.width, width);
    EXPECT_EQ(h.channels, std::string(jpg) == "gray.jpg" ? 1 : 3) << jpg;
  }
  // A gray JPEG as RGB: its gray replicated.
  int64_t height = 0;
  int64_t width = 0;
  const std::vector<uint8_t> gray = pnm_pixels(read_fixture("gray.pgm"), &height, &width);
  const std::vector<uint8_t> rgb =
      record(read_fixture("gray.jpg"), spec_of(height, width, ColorMode::kRgb));
  for (size_t i = 0; i < gray.size(); ++i) {
    ASSERT_EQ(rgb[3 * i], gray[i]);
    ASSERT_EQ(rgb[3 * i + 1], gray[i]);
    ASSERT_EQ(rgb[3 * i + 2], gray[i]);
  }
  // For predict: the luma plane is the ink (bright ink; dark ink inverted).
  const std::vector<uint8_t> bytes = read_fixture("gray.jpg");
  const at::Tensor ink = decode(bytes, /*dark_ink=*/true);
  EXPECT_EQ(ink.sizes(), (at::IntArrayRef{height, width}));
  EXPECT_EQ(ink[0][1].item<int>(), 255 - gray[1]);
  EXPECT_EQ(decode(bytes, false)[0][1].item<int>(), gray[1]);
}

TEST(JpegTest, CmykBecomesRgbByTensorFlowsFormula) {
  // PIL wrote inks (30, 200, 90, 60) and (220, 10, 140, 20) in flat blocks,
  // inverted, with Adobe's marker: TF's R = K * C / 255 on the stored bytes.
  const std::vector<uint8_t> bytes = read_fixture("cmyk.jpg");
  const std::vector<uint8_t> rgb = record(bytes, spec_of(8, 16, ColorMode::kRgb));
  const auto tf = [](int c, int k) { return (255 - k) * (255 - c) / 255; };
  EXPECT_EQ((std::vector<int>{rgb[0], rgb[1], rgb[2]}),
            (std::vector<int>{tf(30, 60), tf(200, 60), tf(90, 60)}));
  EXPECT_EQ((std::vector<int>{rgb[3 * 15], rgb[3 * 15 + 1], rgb[3 * 15 + 2]}),
            (std::vector<int>{tf(220, 20), tf(10, 20), tf(140, 20)}));
  EXPECT_EQ(read_image_header(bytes.data(), bytes.size(), "c.jpg").channels, 3);
  EXPECT_NE(
      record_error(bytes, ColorMode::kGrayscale).find("a CMYK JPEG cannot be read as grayscale"),
      std::string::npos);
}

TEST(BadImageTest, EachBrokenFileIsAClearDataError) {
  const std::vector<uint8_t> jpeg = read_fixture("rgb420.jpg");
  // Truncated: libjpeg only warns (premature end of data); it is an error here.
  // Cut before, inside and after the frame header, in the scan, before EOI.
  for (const size_t keep : {size_t{3}, size_t{20}, size_t{200}, jpeg.size() / 2, jpeg.size() - 2}) {
    const std::string why = record_error({jpeg.begin(), jpeg.begin() + static_cast<long>(keep)});
    EXPECT_TRUE(why.find("the JPEG file is truncated or damaged (") != std::string::npos ||
                why.find("not a valid JPEG file (libjpeg: ") != std::string::npos)
        << keep << ": " << why;
  }
  // Corrupt entropy data, which libjpeg only warns about.
  std::vector<uint8_t> corrupt = jpeg;
  for (size_t i = corrupt.size() / 2; i < corrupt.size() - 2; i += 7) {
    corrupt[i] = static_cast<uint8_t>(corrupt[i] ^ 0x5A);
  }
  EXPECT_NE(record_error(corrupt).find("JPEG file"), std::string::npos);
  // A header claiming 20000x20000 (SOF0's height and width edited): refused
  // from the header, before any allocation.
  std::vector<uint8_t> huge = jpeg;
  for (size_t i = 2; i + 9 < huge.size(); ++i) {
    if (huge[i] == 0xFF && huge[i + 1] == 0xC0) {
      huge[i + 5] = 20000 >> 8;
      huge[i + 6] = 20000 & 0xFF;
      huge[i + 7] = 20000 >> 8;
      huge[i + 8] = 20000 & 0xFF;
      break;
    }
  }
  EXPECT_NE(record_error(huge).find("20000x20000 pixels, more than"), std::string::npos);
  EXPECT_NE(record_error({'h', 'e', 'l', 'l', 'o'}).find("not a PNG, JPEG or PGM image"),
            std::string::npos);
  EXPECT_NE(record_error({'G', 'I', 'F', '8', '9', 'a'}).find("a GIF image"), std::string::npos);
  EXPECT_NE(record_error({}).find("the file is empty"), std::string::npos);
  std::vector<uint8_t> bad_crc = test::gray_png(4, 4, seq(4, 4, 1, 3).data());
  bad_crc[30] ^= 0xFF;
  EXPECT_NE(record_error(bad_crc).find("not a valid PNG file: "), std::string::npos);
  EXPECT_NE(record_error(test::claim_size(bad_crc, 20000, 20000)).find("20000x20000"),
            std::string::npos);
  // Files: a folder, a missing file, each named.
  test::TempDir dir;
  for (const auto& [path, why] : std::vector<std::pair<std::string, std::string>>{
           {dir.path().string(), "not a regular file"},
           {dir.file("missing.jpg"), "cannot open the image: No such file or directory"}}) {
    try {
      read_image_file(path);
      ADD_FAILURE() << path;
    } catch (const DataError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0U) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
  test::write_bytes(dir.file("a.jpg"), jpeg);
  EXPECT_EQ(read_image_file(dir.file("a.jpg")), jpeg);
  std::vector<uint8_t> reused(5, 7);
  read_image_file(dir.file("a.jpg"), reused);
  EXPECT_EQ(reused, jpeg);
}

/// `jpeg` with `count` APP1 segments of 65,533 bytes of data each (the
/// largest a segment holds, as large EXIF blocks are) after its SOI: its
/// frame header then lies beyond the first 64 KB.
std::vector<uint8_t> with_large_app_segments(const std::vector<uint8_t>& jpeg, int count) {
  std::vector<uint8_t> out(jpeg.begin(), jpeg.begin() + 2);
  for (int s = 0; s < count; ++s) {
    out.insert(out.end(), {0xFF, 0xE1, 0xFF, 0xFF});
    out.resize(out.size() + 65533, static_cast<uint8_t>('x'));
  }
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

TEST(ImageFileHeader, ReadsTheHeadOnlyAndMoreWhenTheHeaderLiesFurther) {
  test::TempDir dir;
  const std::vector<uint8_t> jpeg = read_fixture("rgb420.jpg");
  const ImageHeader whole = read_image_header(jpeg.data(), jpeg.size(), "x");
  // A plain JPEG, one whose SOF follows 128 KB of APP1 segments, and a PNG
  // of more than 64 KB: the same header as from all their bytes.
  const std::vector<uint8_t> exif = with_large_app_segments(jpeg, 2);
  ASSERT_GT(exif.size(), 2 * kImageHeadBytes);
  test::write_bytes(dir.file("plain.jpg"), jpeg);
  test::write_bytes(dir.file("exif.jpg"), exif);
  for (const char* name : {"plain.jpg", "exif.jpg"}) {
    const ImageHeader h = read_image_file_header(dir.file(name));
    EXPECT_EQ(h.format, "jpeg") << name;
    EXPECT_EQ(h.height, whole.height) << name;
    EXPECT_EQ(h.width, whole.width) << name;
    EXPECT_EQ(h.channels, 3) << name;
  }
  // The file with the large segments still decodes as the plain one.
  const ImageSpec spec = spec_of(whole.height, whole.width, ColorMode::kRgb);
  EXPECT_EQ(record(exif, spec), record(jpeg, spec));
  std::vector<uint8_t> noise(300 * 300);
  std::mt19937 random(7);
  for (auto& v : noise) {
    v = static_cast<uint8_t>(random());
  }
  const std::vector<uint8_t> png = test::gray_png(300, 300, noise.data());
  ASSERT_GT(png.size(), kImageHeadBytes);
  test::write_bytes(dir.file("big.png"), png);
  const ImageHeader p = read_image_file_header(dir.file("big.png"), "big.png");
  EXPECT_EQ(p.format, "png");
  EXPECT_EQ(p.height, 300);
  EXPECT_EQ(p.channels, 1);
  // A JPEG cut inside its large segments: the same verdict as from all of
  // its bytes, naming the origin given.
  const std::vector<uint8_t> cut(exif.begin(), exif.begin() + 100000);
  test::write_bytes(dir.file("cut.jpg"), cut);
  std::string whole_error;
  try {
    read_image_header(cut.data(), cut.size(), "cut.jpg");
  } catch (const DataError& e) {
    whole_error = e.what();
  }
  ASSERT_FALSE(whole_error.empty());
  try {
    read_image_file_header(dir.file("cut.jpg"), "cut.jpg");
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_EQ(e.what(), whole_error);
  }
  // Files that cannot be read are named by their path.
  try {
    read_image_file_header(dir.file("missing.png"), "missing.png");
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(dir.file("missing.png") + ": cannot open", 0), 0U)
        << e.what();
  }
}

}  // namespace
}  // namespace mnist
