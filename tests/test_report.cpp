// The report's parts: mean and spread of several runs, HTML escaping, the
// most confidently wrong images, sizes per quantization, the images' PNG and
// base64, and the page itself (escaped names, one curve per run and figure,
// the confusion matrix's cells).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "mnist/image.hpp"
#include "mnist/report.hpp"
#include "mnist/tfjs_io.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

TEST(ReportTest, MeanAndSampleStandardDeviation) {
  // numpy: np.mean([1,2,3,4]) = 2.5, np.std([1,2,3,4], ddof=1) = sqrt(5/3).
  const Spread s = mean_and_spread({1, 2, 3, 4});
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(5.0 / 3.0));
  // Two runs: |a - b| / sqrt(2).
  const Spread two = mean_and_spread({0.98, 0.96});
  EXPECT_DOUBLE_EQ(two.mean, 0.97);
  EXPECT_NEAR(two.std, 0.02 / std::sqrt(2.0), 1e-15);
  // A run without the figure (NaN: no validation set) is left out.
  const Spread some = mean_and_spread({kNan, 2, 4});
  EXPECT_EQ(some.n, 2);
  EXPECT_DOUBLE_EQ(some.mean, 3);
  EXPECT_DOUBLE_EQ(some.std, std::sqrt(2.0));
  // One value has no spread; none has no mean.
  const Spread one = mean_and_spread({5});
  EXPECT_DOUBLE_EQ(one.mean, 5);
  EXPECT_TRUE(std::isnan(one.std));
  const Spread none = mean_and_spread({kNan});
  EXPECT_EQ(none.n, 0);
  EXPECT_TRUE(std::isnan(none.mean));
  EXPECT_TRUE(std::isnan(none.std));
  EXPECT_DOUBLE_EQ(mean_and_spread({3, 3, 3}).std, 0.0);
}

TEST(ReportTest, HtmlEscapesMarkupQuotesAndBadUtf8) {
  EXPECT_EQ(html_escape("<script>alert(\"x\")</script> & 'y'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;");
  EXPECT_EQ(html_escape("plain name_1.png"), "plain name_1.png");
  // Well-formed UTF-8 is kept: é, 猫, 🐱.
  EXPECT_EQ(html_escape("caf\xC3\xA9 \xE7\x8C\xAB \xF0\x9F\x90\xB1"),
            "caf\xC3\xA9 \xE7\x8C\xAB \xF0\x9F\x90\xB1");
  const std::string fffd = "\xEF\xBF\xBD";
  // A lone continuation byte, a truncated sequence, an overlong '/', a
  // UTF-16 surrogate, a code point above U+10FFFF: one U+FFFD per byte.
  EXPECT_EQ(html_escape("a\x80z"), "a" + fffd + "z");
  EXPECT_EQ(html_escape("\xE7\x8C"), fffd + fffd);
  EXPECT_EQ(html_escape("\xC0\xAF"), fffd + fffd);
  EXPECT_EQ(html_escape("\xED\xA0\x80"), fffd + fffd + fffd);
  EXPECT_EQ(html_escape("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);
  // Control characters but tab and newline.
  EXPECT_EQ(html_escape(std::string("a\x01\tb\nc\x7F", 7)), "a" + fffd + "\tb\nc" + fffd);
  EXPECT_EQ(html_escape(std::string("a\0b", 3)), "a" + fffd + "b");
}

TEST(ReportTest, Base64IsRfc4648) {
  // RFC 4648, section 10.
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foob"), "Zm9vYg==");
  EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64(std::string("\xFF\xFE\x00", 3)), "//4A");
}

TEST(ReportTest, MostConfidentlyWrongInOrder) {
  // Rows: probabilities of 3 classes; labels below.
  const at::Tensor p = at::tensor({0.1, 0.8, 0.1,    // 0: label 0, predicted 1 at 0.8
                                   0.9, 0.05, 0.05,  // 1: label 0, right
                                   0.2, 0.2, 0.6,    // 2: label 1, predicted 2 at 0.6
                                   0.05, 0.9, 0.05,  // 3: label 2, predicted 1 at 0.9
                                   0.4, 0.4, 0.2,    // 4: label 1, predicted 0 (first of equals)
                                   0.1, 0.8, 0.1},   // 5: label 2, predicted 1 at 0.8 (tie with 0)
                                  at::kDouble)
                           .view({6, 3})
                           .to(at::kFloat);
  const at::Tensor y = at::tensor({0, 0, 1, 2, 1, 2}, at::kLong);
  const std::vector<WrongImage> all = most_confidently_wrong(p, y, 100);
  ASSERT_EQ(all.size(), 5u);
  const std::vector<int64_t> order = {3, 0, 5, 2, 4};
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(all[i].index, order[i]) << i;
  }
  EXPECT_EQ(all[0].label, 2);
  EXPECT_EQ(all[0].predicted, 1);
  EXPECT_NEAR(all[0].confidence, 0.9, 1e-7);
  EXPECT_NEAR(all[0].label_prob, 0.05, 1e-7);
  EXPECT_EQ(all[4].predicted, 0);  // 0.4, 0.4: the first, as argmax
  EXPECT_NEAR(all[4].label_prob, 0.4, 1e-7);
  const std::vector<WrongImage> two = most_confidently_wrong(p, y, 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].index, 3);
  EXPECT_EQ(two[1].index, 0);
  EXPECT_TRUE(most_confidently_wrong(p, y, 0).empty());
  // All right: none.
  EXPECT_TRUE(most_confidently_wrong(p, p.argmax(1), 10).empty());
  EXPECT_THROW(most_confidently_wrong(p, y.narrow(0, 0, 5), 3), DataError);
}

TEST(ReportTest, SizesPerQuantizationAreTheConvertersBytes) {
  Model model(mnist_node_spec());
  const std::vector<StoredSize> sizes = stored_sizes(model);
  ASSERT_EQ(sizes.size(), 4u);
  // One value per parameter: 4 bytes in float32, 2 in float16 and uint16, 1 in uint8.
  EXPECT_EQ(sizes[0].storage, WeightStorage::kFloat32);
  EXPECT_EQ(sizes[0].bytes, 594922u * 4);
  EXPECT_EQ(sizes[1].storage, WeightStorage::kFloat16);
  EXPECT_EQ(sizes[1].bytes, 594922u * 2);
  EXPECT_EQ(sizes[2].storage, WeightStorage::kUint16);
  EXPECT_EQ(sizes[2].bytes, 594922u * 2);
  EXPECT_EQ(sizes[3].storage, WeightStorage::kUint8);
  EXPECT_EQ(sizes[3].bytes, 594922u);
  for (const StoredSize& s : sizes) {
    EXPECT_EQ(s.bytes, stored_weight_bytes(model, s.storage)) << storage_name(s.storage);
  }
}

TEST(ReportTest, LayerParamsAreTheSummarysRows) {
  Model model(mnist_node_spec());
  const std::vector<LayerParams> layers = layer_params(model);
  ASSERT_EQ(layers.size(), model->spec().layers.size());
  int64_t total = 0;
  for (const LayerParams& l : layers) {
    total += l.params;
    // summary_text prints "name (Class)   [[in]]   [out]   params", the
    // first column cut at its width.
    EXPECT_NE(summary_text(model).find(l.name.substr(0, 20)), std::string::npos) << l.name;
  }
  EXPECT_EQ(total, 594922);
  EXPECT_EQ(layers.front().params, 3 * 3 * 1 * 32 + 32);
  EXPECT_EQ(layers.back().output_shape, "[null,10]");
  EXPECT_EQ(layers.back().params, 512 * 10 + 10);
}

TEST(ReportTest, PngOfPixelsDecodesToThem) {
  for (const int64_t channels : {1, 3}) {
    const int64_t h = 5;
    const int64_t w = 7;
    std::vector<uint8_t> pixels(static_cast<size_t>(h * w * channels));
    for (size_t i = 0; i < pixels.size(); ++i) {
      pixels[i] = static_cast<uint8_t>(i * 37 % 256);
    }
    const std::string png = png_bytes(pixels, h, w, channels);
    ASSERT_EQ(png.substr(1, 3), "PNG");
    ImageSpec spec;
    spec.height = h;
    spec.width = w;
    spec.color_mode = channels == 1 ? ColorMode::kGrayscale : ColorMode::kRgb;
    std::vector<uint8_t> back(pixels.size());
    decode_for_dataset(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "png", spec,
                       back.data());
    EXPECT_EQ(back, pixels) << channels;
  }
  EXPECT_THROW(png_bytes(std::vector<uint8_t>(10), 2, 2, 1), DataError);
  EXPECT_THROW(png_bytes(std::vector<uint8_t>(8), 2, 2, 2), DataError);
}

TEST(ReportTest, RunFolderNeedsModelAndHistory) {
  test::TempDir dir;
  EXPECT_THROW(check_run_folder(dir.file("missing")), DataError);
  try {
    check_run_folder(dir.path().string());
    FAIL() << "an empty folder is no run";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path().string() + ": holds no model.json"),
              std::string::npos)
        << e.what();
  }
  std::ofstream(dir.file("model.json")) << "{}";
  try {
    check_run_folder(dir.path().string());
    FAIL() << "a model without history.json is no run";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("holds no history.json"), std::string::npos) << e.what();
  }
  std::ofstream(dir.file("history.json")) << "{}";
  EXPECT_NO_THROW(check_run_folder(dir.path().string()));
  EXPECT_THROW(check_run_folder(dir.file("model.json")), DataError);  // a file, not a folder
}

/// A run of three classes with a hostile name, two epochs, a confusion
/// matrix of 10 images and one wrong image.
RunReport fake_run(const std::string& dir, double shift) {
  RunReport r;
  r.dir = dir;
  r.name = "sequential_1";
  r.device = "cpu <b>";
  r.class_names = {"cat", "<img src=x onerror=alert(1)>", "d\"og&"};
  r.input_shape = {2, 2, 1};
  for (int64_t e = 1; e <= 2; ++e) {
    EpochStats s;
    s.epoch = e;
    s.loss = 1.0 / static_cast<double>(e) + shift;
    s.accuracy = 0.5 + 0.2 * static_cast<double>(e) - shift;
    s.val_loss = 1.2 / static_cast<double>(e) + shift;
    s.val_accuracy = 0.4 + 0.2 * static_cast<double>(e) - shift;
    r.epochs.push_back(s);
  }
  r.total_seconds = 3.5 + shift;
  r.history_test_loss = 0.7;
  r.history_test_acc = 0.8 - shift;
  r.test.count = 10;
  r.test.accuracy = 0.8;
  r.test.loss = 0.5;
  r.test.confusion = at::tensor({3, 1, 0, 0, 3, 0, 1, 0, 2}, at::kLong).view({3, 3});
  r.metrics = per_class_metrics(r.test.confusion);
  WrongImage w;
  w.index = 4;
  w.label = 0;
  w.predicted = 1;
  w.confidence = 0.75;
  w.label_prob = 0.2;
  w.height = w.width = 2;
  w.channels = 1;
  w.hwc = {0, 255, 128, 64};
  r.wrong = {w};
  LayerParams l;
  l.name = "dense_<x>";
  l.class_name = "Dense";
  l.output_shape = "[null,3]";
  l.params = 15;
  r.layers = {l};
  r.total_params = r.trainable_params = 15;
  r.sizes = {{WeightStorage::kFloat32, 60}, {WeightStorage::kUint8, 15}};
  return r;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

TEST(ReportTest, PageEscapesNamesAndDrawsEveryRun) {
  const std::vector<RunReport> runs = {fake_run("runs/<seed1>", 0.0), fake_run("runs/seed2", 0.02)};
  const std::string html = report_html(runs);
  // Nothing from a folder's name gets through as markup.
  EXPECT_EQ(html.find("<img src=x"), std::string::npos);
  EXPECT_EQ(html.find("<seed1>"), std::string::npos);
  EXPECT_EQ(html.find("dense_<x>"), std::string::npos);
  EXPECT_EQ(html.find("cpu <b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  EXPECT_NE(html.find("d&quot;og&amp;"), std::string::npos);
  EXPECT_NE(html.find("runs/&lt;seed1&gt;"), std::string::npos);
  // No script, nothing fetched: every src is a data: URL.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(count_of(html, "src=\""), count_of(html, "src=\"data:image/png;base64,"));
  EXPECT_EQ(count_of(html, "src=\"data:image/png;base64,"), 2u);  // one wrong image per run
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  // Curves: overlaid (both runs) and in each run's section: per run, 4
  // series (loss, val_loss, acc, val_acc) twice, of 2 points each.
  for (const char* run : {"data-run=\"0\" data-series=", "data-run=\"1\" data-series="}) {
    EXPECT_EQ(count_of(html, run), 8u) << run;
  }
  EXPECT_EQ(count_of(html, "data-points=\"2\""), 16u);
  // The confusion matrices' cells: 3x3 per run, summing to the count.
  std::regex cell("class=\"cm\" data-true=\"\\d\" data-predicted=\"\\d\" data-count=\"(\\d+)\"");
  int64_t sum = 0;
  int64_t cells = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), cell); it != std::sregex_iterator();
       ++it) {
    sum += std::stoll((*it)[1]);
    ++cells;
  }
  EXPECT_EQ(cells, 18);
  EXPECT_EQ(sum, 20);
  // The final figures with mean and sample standard deviation.
  EXPECT_NE(html.find("class=\"mean-row\""), std::string::npos);
  EXPECT_NE(html.find("standard deviation (sample, n&minus;1)"), std::string::npos);
  const Spread acc =
      mean_and_spread({runs[0].epochs.back().accuracy, runs[1].epochs.back().accuracy});
  EXPECT_NEAR(acc.std, 0.02 / std::sqrt(2.0), 1e-12);
  char value[64];
  std::snprintf(value, sizeof value, "data-key=\"acc\" data-value=\"%.17g\"", acc.std);
  EXPECT_NE(html.find(value), std::string::npos) << value;
  // One run: no mean or spread rows.
  const std::string one = report_html({runs[0]});
  EXPECT_EQ(one.find("class=\"mean-row\""), std::string::npos);
  EXPECT_NE(one.find("class=\"run-row\""), std::string::npos);
  EXPECT_THROW(report_html({}), ConfigError);
}

}  // namespace
}  // namespace mnist
