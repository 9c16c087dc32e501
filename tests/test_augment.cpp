// --augment (augment.hpp): the spec as Keras's layers take their factors, the
// layers' matrices as Keras 3 writes them, resampling against real TF.js's
// tf.image.transform, contrast and brightness by their formulas, and draws
// that depend on (seed, epoch, batch, slot) only, whatever the threads.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "mnist/augment.hpp"
#include "mnist/error.hpp"

namespace mnist {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::string error_of(const std::string& spec) {
  try {
    parse_augment_spec(spec);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(AugmentSpecTest, FactorsBecomeKerasRanges) {
  const AugmentSpec s = parse_augment_spec(
      "flip=horizontal,rotation=0.1,zoom=-0.2:0.3,zoom_width=0.25,translation=-0.15,"
      "contrast=0.2,brightness=-0.4:0.1,fill_mode=constant,fill_value=0.5,"
      "interpolation=nearest");
  EXPECT_EQ(s.flip, FlipMode::kHorizontal);
  EXPECT_EQ(*s.rotation, (FactorRange{-0.1, 0.1}));
  EXPECT_EQ(*s.zoom_height, (FactorRange{-0.2, 0.3}));
  EXPECT_EQ(*s.zoom_width, (FactorRange{-0.25, 0.25}));
  // A single negative number: its absolute value both ways, as Keras.
  EXPECT_EQ(*s.translation_height, (FactorRange{-0.15, 0.15}));
  EXPECT_EQ(*s.translation_width, (FactorRange{-0.15, 0.15}));
  // RandomContrast's _FACTOR_BOUNDS are (0, 1): f gives (max(-f, 0), f).
  EXPECT_EQ(*s.contrast, (FactorRange{0, 0.2}));
  EXPECT_EQ(*s.brightness, (FactorRange{-0.4, 0.1}));
  EXPECT_EQ(s.fill_mode, FillMode::kConstant);
  EXPECT_EQ(s.fill_value, 0.5);
  EXPECT_EQ(s.interpolation, AffineInterpolation::kNearest);
  // A pair is sorted.
  EXPECT_EQ(*parse_augment_spec("rotation=0.3:-0.2").rotation, (FactorRange{-0.2, 0.3}));
}

TEST(AugmentSpecTest, CanonicalTextReadsBack) {
  EXPECT_EQ(augment_spec_text(parse_augment_spec("default")),
            "flip=horizontal,rotation=0.1,zoom=0.1,fill_mode=reflect,fill_value=0,"
            "interpolation=bilinear");
  EXPECT_EQ(augment_spec_text(parse_augment_spec("contrast=0.2,flip=vertical")),
            "flip=vertical,contrast=0:0.2");
  EXPECT_EQ(augment_spec_text(parse_augment_spec("translation_height=0.1,brightness=0.3")),
            "translation_height=0.1,translation_width=0,brightness=0.3,fill_mode=reflect,"
            "fill_value=0,interpolation=bilinear");
  for (const char* text :
       {"default", "default,contrast=0.1", "zoom=-0.5:0.25,zoom_width=0.1,fill_mode=wrap",
        "translation_height=0.1,translation_width=-0.3:0.2,interpolation=nearest",
        "rotation=-0.05:0.3,fill_mode=constant,fill_value=-1.5", "flip=horizontal_and_vertical"}) {
    const std::string once = augment_spec_text(parse_augment_spec(text));
    EXPECT_EQ(augment_spec_text(parse_augment_spec(once)), once) << text;
  }
}

TEST(AugmentSpecTest, BadSpecsAreRefusedByName) {
  EXPECT_NE(error_of("shear=0.1").find("augmentation \"shear=0.1\": unknown key \"shear\""),
            std::string::npos);
  EXPECT_NE(error_of("flip=diagonal").find("horizontal, vertical or horizontal_and_vertical"),
            std::string::npos);
  EXPECT_NE(error_of("rotation=1.5").find("\"rotation=1.5\": out of range"), std::string::npos);
  EXPECT_NE(error_of("rotation=abc").find("\"abc\" is not a number"), std::string::npos);
  EXPECT_NE(error_of("rotation=nan").find("is not a number"), std::string::npos);
  EXPECT_NE(error_of("zoom=-1.2:0.1").find("numbers in [-1, 1]"), std::string::npos);
  EXPECT_NE(error_of("translation=2").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("contrast=-0.1").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("contrast=1.5:2").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("brightness=1.1").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("fill_mode=mirror").find("reflect, wrap, constant or nearest"),
            std::string::npos);
  EXPECT_NE(error_of("interpolation=bicubic").find("bilinear or nearest"), std::string::npos);
  EXPECT_NE(error_of("rotation=0.1,rotation=0.2").find("given twice"), std::string::npos);
  EXPECT_NE(error_of("rotation").find("expected key=value"), std::string::npos);
  EXPECT_NE(error_of("rotation=0.1,").find("expected key=value"), std::string::npos);
  EXPECT_NE(error_of("zoom_width=0.1").find("needs zoom"), std::string::npos);
  EXPECT_NE(error_of("fill_mode=wrap").find("names no transform"), std::string::npos);
  // Keras checks a pair's first against the upper bound and its second
  // against the lower one only: (-5, 0.2) passes there, so here too.
  EXPECT_EQ(*parse_augment_spec("rotation=-5:0.2").rotation, (FactorRange{-5, 0.2}));
}

// Keras 3's matrices, written out from random_rotation.py, random_zoom.py and
// random_translation.py.
TEST(AugmentMatrixTest, EqualKerasFormulas) {
  for (const auto& [h, w] : {std::pair<int64_t, int64_t>{4, 5}, {5, 4}}) {
    const double a = 0.7;
    const double hm = static_cast<double>(h) - 1;
    const double wm = static_cast<double>(w) - 1;
    const Projective r = rotation_matrix(a, h, w);
    const std::vector<double> want_r = {std::cos(a),
                                        -std::sin(a),
                                        ((wm) - (std::cos(a) * wm - std::sin(a) * hm)) / 2.0,
                                        std::sin(a),
                                        std::cos(a),
                                        ((hm) - (std::sin(a) * wm + std::cos(a) * hm)) / 2.0,
                                        0,
                                        0};
    for (int i = 0; i < 8; ++i) {
      EXPECT_FLOAT_EQ(r[i], static_cast<float>(want_r[i])) << "rotation " << i;
    }
    const Projective z = zoom_matrix(1.3, 0.8, h, w);
    const std::vector<double> want_z = {1.3, 0, wm / 2.0 * (1 - 1.3), 0, 0.8, hm / 2.0 * (1 - 0.8),
                                        0,   0};
    for (int i = 0; i < 8; ++i) {
      EXPECT_FLOAT_EQ(z[i], static_cast<float>(want_z[i])) << "zoom " << i;
    }
  }
  const Projective t = translation_matrix(1.6, -2.3);
  const Projective want_t = {1, 0, -1.6f, 0, 1, 2.3f, 0, 0};
  EXPECT_EQ(t, want_t);
  // Zero rotation, zoom 1, no shift: the identity.
  const Projective id = {1, 0, 0, 0, 1, 0, 0, 0};
  EXPECT_EQ(zoom_matrix(1, 1, 7, 3), id);
  const Projective r0 = rotation_matrix(0, 7, 3);
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(r0[i], id[i], 1e-7);
  }
}

/// The test image of transform_reference.js: value i (HWC) is
/// ((i * k + 7) % 251) / 250, here as [c,h,w].
std::vector<float> seq_chw(int64_t h, int64_t w, int64_t c, int64_t k) {
  std::vector<float> out(static_cast<size_t>(h * w * c));
  for (int64_t i = 0; i < h * w * c; ++i) {
    const int64_t ch = i % c;
    const int64_t x = (i / c) % w;
    const int64_t y = i / (c * w);
    out[static_cast<size_t>((ch * h + y) * w + x)] =
        static_cast<float>(static_cast<double>((i * k + 7) % 251) / 250);
  }
  return out;
}

// Expected values: real TF.js 4.22's tf.image.transform, made by
// tests/node/transform_reference.js (re-runnable) into
// tests/data/augment/transform_reference.json.
TEST(AffineTransformTest, ValuesAreRealTfjss) {
  std::ifstream in(std::string(MNIST_TEST_DATA_DIR) + "/augment/transform_reference.json");
  ASSERT_TRUE(in) << "tests/data/augment/transform_reference.json";
  const nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_EQ(cases.size(), 2u * 6 * 2 * 4);
  int checked = 0;
  for (const auto& t : cases) {
    const int64_t h = t["h"], w = t["w"], c = t["c"], k = t["k"];
    Projective m{};
    for (int i = 0; i < 8; ++i) {
      m[i] = t["m"][i].get<float>();
    }
    const std::string fill = t["fill_mode"];
    const FillMode mode = fill == "reflect"    ? FillMode::kReflect
                          : fill == "wrap"     ? FillMode::kWrap
                          : fill == "constant" ? FillMode::kConstant
                                               : FillMode::kNearest;
    const AffineInterpolation interp = t["interpolation"] == "nearest"
                                           ? AffineInterpolation::kNearest
                                           : AffineInterpolation::kBilinear;
    const std::vector<float> image = seq_chw(h, w, c, k);
    std::vector<float> out(image.size(), -7.0f);
    affine_transform(image.data(), out.data(), c, h, w, m, interp, mode,
                     t["fill_value"].get<float>());
    const auto& want = t["values"];  // HWC
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        for (int64_t ch = 0; ch < c; ++ch) {
          const float expected = want[static_cast<size_t>((y * w + x) * c + ch)].get<float>();
          EXPECT_NEAR(out[static_cast<size_t>((ch * h + y) * w + x)], expected, 1e-6)
              << t["matrix"] << " " << t["interpolation"] << " " << fill << " " << h << "x" << w
              << "x" << c << " at y " << y << " x " << x << " c " << ch;
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 6 * 2 * 4 * (4 * 5 * 1 + 5 * 4 * 3));
}

TEST(AugmentLayerTest, FlipIsExact) {
  const std::vector<float> base = seq_chw(4, 5, 1, 37);
  std::vector<float> scratch(base.size());
  ImageDraws flip;
  flip.flip = true;
  {
    const Augmenter a(parse_augment_spec("flip=horizontal"), 1);
    std::vector<float> im = base;
    a.apply(im.data(), scratch.data(), 1, 4, 5, flip);
    for (int y = 0; y < 4; ++y) {
      for (int x = 0; x < 5; ++x) {
        EXPECT_EQ(im[y * 5 + x], base[y * 5 + (4 - x)]);
      }
    }
    std::vector<float> same = base;
    a.apply(same.data(), scratch.data(), 1, 4, 5, ImageDraws{});
    EXPECT_EQ(same, base);
  }
  const std::vector<float> rgb = seq_chw(5, 4, 3, 53);
  scratch.resize(rgb.size());
  {
    const Augmenter a(parse_augment_spec("flip=vertical"), 1);
    std::vector<float> im = rgb;
    a.apply(im.data(), scratch.data(), 3, 5, 4, flip);
    for (int ch = 0; ch < 3; ++ch) {
      for (int y = 0; y < 5; ++y) {
        for (int x = 0; x < 4; ++x) {
          EXPECT_EQ(im[(ch * 5 + y) * 4 + x], rgb[(ch * 5 + (4 - y)) * 4 + x]);
        }
      }
    }
  }
  {
    // One draw flips both ways (Keras's horizontal_and_vertical).
    const Augmenter a(parse_augment_spec("flip=horizontal_and_vertical"), 1);
    std::vector<float> im = rgb;
    a.apply(im.data(), scratch.data(), 3, 5, 4, flip);
    for (int ch = 0; ch < 3; ++ch) {
      for (int y = 0; y < 5; ++y) {
        for (int x = 0; x < 4; ++x) {
          EXPECT_EQ(im[(ch * 5 + y) * 4 + x], rgb[(ch * 5 + (4 - y)) * 4 + (3 - x)]);
        }
      }
    }
  }
}

TEST(AugmentLayerTest, ContrastFormulaPerChannelClipped) {
  // Two channels of 2x2: means 0.375 and 0.5.
  std::vector<float> im = {0.1f, 0.2f, 0.3f, 0.9f, 0.4f, 0.5f, 0.5f, 0.6f};
  adjust_contrast(im.data(), 2, 2, 2, 1.5);
  const std::vector<float> want = {0.0f,  // -0.0375 clipped
                                   0.1125f, 0.2625f,
                                   1.0f,  // 1.2375 clipped
                                   0.35f,   0.5f,    0.5f, 0.65f};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(im[i], want[i], 1e-6) << i;
  }
}

TEST(AugmentLayerTest, BrightnessAddsDeltaClipped) {
  std::vector<float> im = {0.0f, 0.5f, 0.8f, 1.0f};
  adjust_brightness(im.data(), 4, 0.3);
  EXPECT_EQ(im, (std::vector<float>{0.3f, 0.8f, 1.0f, 1.0f}));
  adjust_brightness(im.data(), 4, -0.5);
  EXPECT_NEAR(im[0], 0.0f, 0);
  EXPECT_NEAR(im[1], 0.3f, 1e-6);
  EXPECT_NEAR(im[2], 0.5f, 1e-6);
}

TEST(AugmentLayerTest, GeometricLayersResampleOneAfterAnother) {
  const AugmentSpec spec = parse_augment_spec(
      "rotation=0.2,zoom=0.3,translation=0.2,fill_mode=wrap,interpolation=bilinear");
  const Augmenter a(spec, 9);
  const ImageDraws d = a.draws(2, 3, 4);
  const std::vector<float> base = seq_chw(5, 4, 3, 53);
  std::vector<float> got = base;
  std::vector<float> scratch(base.size());
  a.apply(got.data(), scratch.data(), 3, 5, 4, d);
  std::vector<float> want = base;
  std::vector<float> tmp(base.size());
  for (const Projective& m : {rotation_matrix(d.angle, 5, 4), zoom_matrix(d.zoom_x, d.zoom_y, 5, 4),
                              translation_matrix(d.shift_x * 4, d.shift_y * 5)}) {
    affine_transform(want.data(), tmp.data(), 3, 5, 4, m, AffineInterpolation::kBilinear,
                     FillMode::kWrap, 0);
    want.swap(tmp);  // the next layer reads this one's output
  }
  EXPECT_EQ(got, want);
  EXPECT_NE(got, base);
}

TEST(AugmentDrawsTest, PureFunctionOfSeedEpochBatchSlotWithinRanges) {
  const AugmentSpec spec = parse_augment_spec(
      "flip=horizontal,rotation=-0.05:0.1,zoom=0.2,zoom_width=-0.1:0.3,translation=0.1,"
      "contrast=0.2,brightness=0.25");
  const Augmenter a(spec, 42);
  const Augmenter same(spec, 42);
  const Augmenter other(spec, 43);
  int flips = 0;
  int differ = 0;
  for (int64_t i = 0; i < 1000; ++i) {
    const ImageDraws d = a.draws(3, i / 100, i % 100);
    const ImageDraws e = same.draws(3, i / 100, i % 100);
    EXPECT_EQ(d.angle, e.angle);
    EXPECT_EQ(d.zoom_x, e.zoom_x);
    EXPECT_EQ(d.brightness, e.brightness);
    flips += d.flip ? 1 : 0;
    EXPECT_GE(d.angle, -0.05 * 2 * kPi);
    EXPECT_LT(d.angle, 0.1 * 2 * kPi);
    EXPECT_GE(d.zoom_y, 0.8);
    EXPECT_LT(d.zoom_y, 1.2);
    EXPECT_GE(d.zoom_x, 0.9);
    EXPECT_LT(d.zoom_x, 1.3);
    EXPECT_GE(d.shift_x, -0.1);
    EXPECT_LT(d.shift_x, 0.1);
    EXPECT_GE(d.contrast, 1.0);  // Keras 3's contrast=0.2 is [1, 1.2]
    EXPECT_LT(d.contrast, 1.2);
    EXPECT_GE(d.brightness, -0.25);
    EXPECT_LT(d.brightness, 0.25);
    differ += other.draws(3, i / 100, i % 100).angle != d.angle ? 1 : 0;
  }
  EXPECT_GT(flips, 400);
  EXPECT_LT(flips, 600);
  EXPECT_EQ(differ, 1000);
  // Another epoch, batch or slot: other values.
  const double base = a.draws(1, 0, 0).angle;
  EXPECT_NE(a.draws(2, 0, 0).angle, base);
  EXPECT_NE(a.draws(1, 1, 0).angle, base);
  EXPECT_NE(a.draws(1, 0, 1).angle, base);
  // Without zoom_width, the height's draw for both.
  const Augmenter z(parse_augment_spec("zoom=0.3"), 1);
  const ImageDraws dz = z.draws(1, 2, 3);
  EXPECT_EQ(dz.zoom_x, dz.zoom_y);
}

Dataset folder_like(int64_t n, int64_t c, int64_t h, int64_t w) {
  // uint8 [N,H,W,C] viewed as [N,C,H,W], with rows, as a folder's cache.
  const at::Tensor nhwc =
      at::arange(n * h * w * c, at::kLong).remainder(256).to(at::kByte).reshape({n, h, w, c});
  Dataset d;
  d.images = nhwc.permute({0, 3, 1, 2});
  d.rows = at::arange(n - 1, -1, -1, at::kLong);  // reversed
  d.labels = at::zeros({n}, at::kLong);
  return d;
}

TEST(AugmenterBatchTest, GathersLikeDatasetAndAppliesEachSlotsDraws) {
  const Dataset data = folder_like(10, 3, 5, 4);
  const Augmenter a(parse_augment_spec("flip=horizontal,rotation=0.1,contrast=0.3"), 7);
  const at::Tensor idx = at::tensor({3, 0, 9, 3}, at::kLong);
  const at::Tensor got = a.batch(data, idx, 2, 5);
  ASSERT_EQ(got.sizes(), (at::IntArrayRef{4, 3, 5, 4}));
  const at::Tensor plain = data.gather(idx).contiguous();
  std::vector<float> scratch(60);
  for (int64_t i = 0; i < 4; ++i) {
    at::Tensor want = plain[i].clone();
    a.apply(want.data_ptr<float>(), scratch.data(), 3, 5, 4, a.draws(2, 5, i));
    EXPECT_TRUE(at::equal(got[i], want)) << i;
  }
  // Slots 0 and 3 hold the same record but their own draws.
  EXPECT_FALSE(at::equal(got[0], got[3]));
  // float32 images as MNIST's, no rows.
  Dataset floats{plain, at::zeros({4}, at::kLong)};
  const at::Tensor f = a.batch(floats, at::tensor({0, 1, 2, 3}, at::kLong), 2, 5);
  EXPECT_TRUE(at::equal(f, got));
  EXPECT_THROW(a.batch(data, at::tensor({10}, at::kLong), 1, 0), DataError);
}

TEST(AugmentPipelineTest, SameBatchesWhateverTheThreads) {
  const Dataset data = folder_like(50, 1, 6, 7);
  const Augmenter a(parse_augment_spec("default,translation=0.2,brightness=0.1"), 11);
  const at::Tensor order = at::randperm(50, at::kLong);
  std::vector<at::Tensor> one;
  {
    AugmentPipeline p(a, data, order, 3, 0, 7, 8, 1, 1);
    for (int b = 0; b < 7; ++b) {
      one.push_back(p.next());
    }
    EXPECT_THROW(p.next(), ConfigError);
  }
  ASSERT_EQ(one.back().size(0), 2);  // 50 = 6 * 8 + 2
  for (const int threads : {2, 5}) {
    AugmentPipeline p(a, data, order, 3, 0, 7, 8, threads, 3);
    for (int b = 0; b < 7; ++b) {
      EXPECT_TRUE(at::equal(p.next(), one[static_cast<size_t>(b)])) << threads << " " << b;
    }
  }
  // Resumed at batch 4: the same batches 4..6.
  AugmentPipeline resumed(a, data, order, 3, 4, 7, 8, 2, 2);
  for (int b = 4; b < 7; ++b) {
    EXPECT_TRUE(at::equal(resumed.next(), one[static_cast<size_t>(b)])) << b;
  }
  // Another seed: other images.
  const Augmenter other(parse_augment_spec("default,translation=0.2,brightness=0.1"), 12);
  AugmentPipeline p(other, data, order, 3, 0, 7, 8, 1, 1);
  EXPECT_FALSE(at::equal(p.next(), one[0]));
}

TEST(AugmentPipelineTest, DestroyedEarlyEndsItsThreads) {
  const Dataset data = folder_like(400, 1, 8, 8);
  const Augmenter a(parse_augment_spec("rotation=0.1"), 1);
  for (int i = 0; i < 20; ++i) {
    AugmentPipeline p(a, data, at::arange(400, at::kLong), 1, 0, 100, 4, 4, 8);
    p.next();
    // Leaves with work queued and none taken: the destructor must not hang.
  }
  SUCCEED();
}

}  // namespace
}  // namespace mnist
