// The serve allow-list: only listed files are reachable; traversal, encoded
// traversal, absolute paths and symlinks out of their folder are 404s;
// content types; the weights manifest decides which weight files exist.
#include "mnist/serve.hpp"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/image_folder.hpp"
#include "mnist/layers.hpp"
#include "mnist/tfjs_io.hpp"
#include "png_util.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

using test::TempDir;

/// A model folder with model.json naming two weight shards, history.json,
/// and a web folder with the page files.
struct Site {
  TempDir tmp;
  std::string models = tmp.file("models");
  std::string web = tmp.file("web");
  std::string outside = tmp.file("secret.txt");
  ServeTable table;

  Site() {
    std::filesystem::create_directories(models);
    std::filesystem::create_directories(web + "/node_modules/@tensorflow/tfjs/dist");
    test::write_bytes(models + "/model.json",
                      bytes(R"({"modelTopology":{},"weightsManifest":[)"
                            R"({"paths":["weights.bin","shards/b.bin"],"weights":[]},)"
                            R"({"paths":["../escape.bin","/etc/passwd"],"weights":[]}]})"));
    test::write_bytes(models + "/weights.bin", bytes("w"));
    std::filesystem::create_directories(models + "/shards");
    test::write_bytes(models + "/shards/b.bin", bytes("b"));
    test::write_bytes(models + "/history.json", bytes("{}"));
    test::write_bytes(tmp.file("escape.bin"), bytes("x"));
    test::write_bytes(outside, bytes("secret"));
    for (const char* f :
         {"index.html", "app.js", "style.css", "node_modules/@tensorflow/tfjs/dist/tf.min.js"}) {
      test::write_bytes(web + "/" + f, bytes("x"));
    }
    add_web_files(table, web);
    add_model_files(table, models);
  }

  static std::vector<uint8_t> bytes(const std::string& s) {
    return std::vector<uint8_t>(s.begin(), s.end());
  }

  std::string resolved(const std::string& target) const {
    const auto f = resolve_request_path(target, table);
    return f ? f->path : "404";
  }
};

TEST(ServeTest, EveryRouteMapsToItsFile) {
  Site s;
  EXPECT_EQ(s.resolved("/"), s.web + "/index.html");
  EXPECT_EQ(s.resolved("/index.html"), s.web + "/index.html");
  EXPECT_EQ(s.resolved("/app.js"), s.web + "/app.js");
  EXPECT_EQ(s.resolved("/style.css"), s.web + "/style.css");
  EXPECT_EQ(s.resolved("/vendor/tf.min.js"),
            s.web + "/node_modules/@tensorflow/tfjs/dist/tf.min.js");
  EXPECT_EQ(s.resolved("/models/model.json"), s.models + "/model.json");
  EXPECT_EQ(s.resolved("/models/history.json"), s.models + "/history.json");
  EXPECT_EQ(s.resolved("/models/weights.bin"), s.models + "/weights.bin");
  EXPECT_EQ(s.resolved("/models/shards/b.bin"), s.models + "/shards/b.bin");
  EXPECT_EQ(s.resolved("/models/model.json?v=2"), s.models + "/model.json");
  EXPECT_EQ(s.resolved("/models/%77eights.bin"), s.models + "/weights.bin");
}

TEST(ServeTest, ListedButMissingFilesAre404) {
  Site s;  // tfjs-vis was not "installed"
  EXPECT_EQ(s.resolved("/vendor/tfjs-vis.umd.min.js"), "404");
  std::remove((s.models + "/history.json").c_str());
  EXPECT_EQ(s.resolved("/models/history.json"), "404");
}

TEST(ServeTest, UnknownPathsAre404) {
  Site s;
  for (const char* t : {"/models/", "/models", "/models/other.json", "/web/index.html",
                        "/node_modules/@tensorflow/tfjs/dist/tf.min.js", "/package.json",
                        "/vendor/", "/favicon.ico", "", "index.html", "/INDEX.HTML"}) {
    EXPECT_EQ(s.resolved(t), "404") << t;
  }
}

TEST(ServeTest, TraversalIs404) {
  Site s;
  for (const char* t :
       {"/../secret.txt", "/models/../secret.txt", "/models/../../etc/passwd",
        "/models/%2e%2e/secret.txt", "/models/%2E%2E/%2e%2e/etc/passwd", "/models/..%2fsecret.txt",
        "/models/..%2Fsecret.txt", "/%2e%2e%2fsecret.txt", "/models/..\\secret.txt",
        "/models/..%5csecret.txt", "/models/./model.json", "/models//model.json",
        "/models/../escape.bin", "/escape.bin", "/models/%252e%252e/secret.txt",
        "/models/model.json%00.html", "/models/model.json%", "/models/model.json%zz"}) {
    EXPECT_EQ(s.resolved(t), "404") << t;
  }
}

TEST(ServeTest, AbsolutePathsAre404) {
  Site s;
  for (const std::string& t :
       std::vector<std::string>{s.outside, "//etc/passwd", "/etc/passwd", "%2fetc%2fpasswd",
                                "http://127.0.0.1/models/model.json", "/models/%2fetc%2fpasswd",
                                "/models//etc/passwd"}) {
    EXPECT_EQ(s.resolved(t), "404") << t;
  }
}

TEST(ServeTest, ManifestNamesOnlyPlainRelativePaths) {
  Site s;
  EXPECT_EQ(s.table.count("/models/../escape.bin"), 0U);
  EXPECT_EQ(s.table.count("/models//etc/passwd"), 0U);
  EXPECT_EQ(s.table.count("/models/shards/b.bin"), 1U);
  EXPECT_TRUE(is_plain_relative_path("weights.bin"));
  EXPECT_TRUE(is_plain_relative_path("group1-shard1of2.bin"));
  for (const char* p : {"", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\\b", "a/"}) {
    EXPECT_FALSE(is_plain_relative_path(p)) << p;
  }
}

/// TF.js's browser saver names "./NAME.weights.bin": the same rule as
/// loading serves it under its plain name, where the page's loader asks.
TEST(ServeTest, DotSlashManifestPathsAreServedUnderTheirPlainNames) {
  TempDir tmp;
  const std::string models = tmp.file("models");
  std::filesystem::create_directories(models);
  const std::string json = R"({"modelTopology":{},"weightsManifest":[)"
                           R"({"paths":["./my.weights.bin","./a/../../x.bin"],"weights":[]}]})";
  test::write_bytes(models + "/model.json", std::vector<uint8_t>(json.begin(), json.end()));
  test::write_bytes(models + "/my.weights.bin", {1, 2});
  ServeTable table;
  add_model_files(table, models);
  ASSERT_TRUE(resolve_request_path("/models/my.weights.bin", table).has_value());
  EXPECT_EQ(resolve_request_path("/models/my.weights.bin", table)->path,
            models + "/my.weights.bin");
  EXPECT_EQ(table.size(), 4U)
      << "model.json, history.json, metadata.json, my.weights.bin: not the escape";
}

/// serve reads model.json with the same bounds as loading: one nested too
/// deeply lists no weights (and the page says the model does not load).
TEST(ServeTest, ModelJsonIsReadWithTheLoadersBounds) {
  TempDir tmp;
  const std::string models = tmp.file("models");
  std::filesystem::create_directories(models);
  const std::string json = R"({"weightsManifest":[{"paths":["w.bin"],"x":)" +
                           std::string(100, '[') + std::string(100, ']') + "}]}";
  test::write_bytes(models + "/model.json", std::vector<uint8_t>(json.begin(), json.end()));
  test::write_bytes(models + "/w.bin", {1});
  ServeTable table;
  add_model_files(table, models);
  EXPECT_EQ(table.count("/models/w.bin"), 0U);
  EXPECT_EQ(table.count("/models/model.json"), 1U);
}

TEST(ServeTest, SymlinkOutOfItsFolderIs404) {
  Site s;
  // weights.bin replaced by a link to a file outside the model folder.
  std::remove((s.models + "/weights.bin").c_str());
  ASSERT_EQ(symlink(s.outside.c_str(), (s.models + "/weights.bin").c_str()), 0);
  EXPECT_EQ(s.resolved("/models/weights.bin"), "404");
  // A folder link out of the model folder: shards/ -> its parent.
  std::remove((s.models + "/shards/b.bin").c_str());
  std::filesystem::remove(s.models + "/shards");
  ASSERT_EQ(symlink(s.tmp.path().c_str(), (s.models + "/shards").c_str()), 0);
  test::write_bytes(s.tmp.file("b.bin"), Site::bytes("outside"));
  EXPECT_EQ(s.resolved("/models/shards/b.bin"), "404");
  // A link that stays inside the folder is fine.
  std::remove((s.models + "/history.json").c_str());
  ASSERT_EQ(symlink("model.json", (s.models + "/history.json").c_str()), 0);
  EXPECT_EQ(s.resolved("/models/history.json"), s.models + "/history.json");
}

/// Teachable Machine's metadata.json is served when the folder has one.
TEST(ServeTest, MetadataJsonWhenPresent) {
  Site s;
  EXPECT_EQ(s.resolved("/models/metadata.json"), "404");
  test::write_bytes(s.models + "/metadata.json", Site::bytes(R"({"labels":["a","b"]})"));
  EXPECT_EQ(s.resolved("/models/metadata.json"), s.models + "/metadata.json");
  EXPECT_EQ(content_type_for("metadata.json"), "application/json");
}

TEST(ServeTest, DirectoriesAreNotFiles) {
  Site s;
  std::remove((s.models + "/history.json").c_str());
  std::filesystem::create_directories(s.models + "/history.json");
  EXPECT_EQ(s.resolved("/models/history.json"), "404");
}

TEST(ServeTest, MissingOrBrokenModelJsonStillListsModelJson) {
  TempDir tmp;
  test::write_bytes(tmp.file("model.json"), Site::bytes("{not json"));
  ServeTable table;
  add_model_files(table, tmp.path().string());
  EXPECT_EQ(table.size(), 3U);  // model.json, history.json and metadata.json
  EXPECT_TRUE(resolve_request_path("/models/model.json", table).has_value());
  ServeTable empty;
  add_model_files(empty, tmp.file("nowhere"));
  EXPECT_FALSE(resolve_request_path("/models/model.json", empty).has_value());
}

TEST(ServeTest, ContentTypes) {
  EXPECT_EQ(content_type_for("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("a/app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("style.CSS"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type_for("model.json"), "application/json");
  EXPECT_EQ(content_type_for("weights.bin"), "application/octet-stream");
  EXPECT_EQ(content_type_for("shot.png"), "image/png");
  EXPECT_EQ(content_type_for("README"), "application/octet-stream");
  Site s;
  EXPECT_EQ(resolve_request_path("/", s.table)->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(resolve_request_path("/models/weights.bin", s.table)->content_type,
            "application/octet-stream");
}

TEST(ServeTest, PercentDecode) {
  EXPECT_EQ(percent_decode("/a%20b%2Fc").value(), "/a b/c");
  EXPECT_EQ(percent_decode("a+b").value(), "a+b");
  EXPECT_FALSE(percent_decode("%").has_value());
  // A raw NUL too (fuzz_serve_path: corpus/serve_path/raw-nul).
  EXPECT_FALSE(percent_decode(std::string("/mo\x12\0ls/model.json", 18)).has_value());
  EXPECT_FALSE(percent_decode("%4").has_value());
  EXPECT_FALSE(percent_decode("%g0").has_value());
  EXPECT_FALSE(percent_decode("a%00b").has_value());
}

TEST(ServeTest, SampleIsTheFirstTestRecords) {
  TempDir tmp;
  test::write_tiny_mnist(tmp.path().string(), "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                         30);
  const MnistSample s = load_sample(tmp.path().string(), 20);
  ASSERT_EQ(s.images.size(), 20U * 784);
  ASSERT_EQ(s.labels.size(), 20U);
  EXPECT_EQ(s.labels[13], 3);
  EXPECT_EQ(s.images[5 * 784 + 7], 12);  // (record + pixel) % 256
  EXPECT_EQ(load_sample(tmp.path().string(), 500).labels.size(), 30U);
  EXPECT_THROW(load_sample(tmp.file("nowhere"), 10), DataError);
}

/// A model of H x W x C images (3x4 RGB by default) and classes {"x", "y"}
/// (global average pooling, dense softmax), saved with a folder model's
/// metadata into `dir`.
void save_folder_model(const std::string& dir,
                       int64_t height = 3,
                       int64_t width = 4,
                       ColorMode color = ColorMode::kRgb) {
  ModelSpec spec;
  spec.input_shape = {height, width, color == ColorMode::kRgb ? 3 : 1};
  spec.layers = {test::layer("GlobalAveragePooling2D", "pool_1"),
                 test::layer("Dense", "dense_1", {{"units", 2}, {"activation", "softmax"}})};
  ImageSpec image;
  image.height = height;
  image.width = width;
  image.color_mode = color;
  spec.metadata = folder_metadata(nullptr, {"x", "y"}, image);
  save_tfjs(Model(spec), dir);
}

/// A 4x3 gray PNG whose pixels are value, value+1, ...
void write_folder_png(const std::string& path, uint8_t value) {
  std::vector<uint8_t> gray(12);
  for (size_t i = 0; i < gray.size(); ++i) {
    gray[i] = static_cast<uint8_t>(value + i);
  }
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  test::write_bytes(path, test::gray_png(4, 3, gray.data()));
}

void write_text(const std::string& path, const std::string& text) {
  test::write_bytes(path, text.data(), text.size());
}

std::string thrown(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

// A model of a folder's images: its sample is the folder's test images at
// the model's size and colours, labelled by the model's classes; from the
// folder given, else from the one history.json names.
TEST(ServeTest, FolderModelSampleComesFromItsFolder) {
  TempDir tmp;
  const std::string model = tmp.file("model");
  const std::string data = tmp.file("data");
  save_folder_model(model);
  for (int i = 0; i < 3; ++i) {
    write_folder_png(data + "/train/x/" + std::to_string(i) + ".png", 0);
    write_folder_png(data + "/train/y/" + std::to_string(i) + ".png", 0);
    write_folder_png(data + "/test/x/" + std::to_string(i) + ".png", static_cast<uint8_t>(10 * i));
    write_folder_png(data + "/test/y/" + std::to_string(i) + ".png",
                     static_cast<uint8_t>(100 + 10 * i));
  }
  const std::string cache = tmp.file("cache");
  const ServeSample s = load_model_sample(model, data, 3, cache);
  EXPECT_EQ(s.source, "folder");
  EXPECT_EQ(s.data_dir, data);
  EXPECT_EQ(std::vector<int64_t>({s.height, s.width, s.channels}), std::vector<int64_t>({3, 4, 3}));
  // Files 0, 2, 4 of x0 x1 x2 y0 y1 y2: x0, x2, y1.
  EXPECT_EQ(s.labels, std::vector<int64_t>({0, 0, 1}));
  ASSERT_EQ(s.images.size(), 3U * 3 * 4 * 3);
  const auto pixel = [&s](size_t image, size_t y, size_t x, size_t c) {
    return static_cast<int>(static_cast<uint8_t>(s.images[((image * 3 + y) * 4 + x) * 3 + c]));
  };
  EXPECT_EQ(pixel(0, 0, 0, 0), 0);
  EXPECT_EQ(pixel(1, 0, 0, 2), 20);   // gray replicated into R, G and B
  EXPECT_EQ(pixel(2, 2, 3, 1), 121);  // HWC order: row 2, column 3 is pixel 11
  EXPECT_EQ(pixel(2, 1, 0, 0), 114);

  // No folder given: history.json's; gone: said so; none named: said so.
  write_text(model + "/history.json", nlohmann::json({{"data", {{"folder", data}}}}).dump());
  EXPECT_EQ(load_model_sample(model, "", 3, cache).images, s.images);
  write_text(model + "/history.json",
             nlohmann::json({{"data", {{"folder", data + "-moved"}}}}).dump());
  EXPECT_NE(thrown([&] {
              load_model_sample(model, "", 3, cache);
            }).find(data + "-moved: the folder of images the model was trained on"),
            std::string::npos);
  write_text(model + "/history.json", "{}");
  EXPECT_NE(thrown([&] {
              load_model_sample(model, "", 3, cache);
            }).find("history.json: names no folder of images"),
            std::string::npos);
  // MNIST's IDX files are no sample for it.
  const std::string idx = tmp.file("idx");
  std::filesystem::create_directories(idx);
  test::write_tiny_mnist(idx, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 5);
  EXPECT_NE(thrown([&] { load_model_sample(model, idx, 3, cache); })
                .find(": not a folder of class folders of images; the model (" + model +
                      ") takes 3x4 rgb images"),
            std::string::npos);
  // Nor is a folder of images one for MNIST's digits.
  const std::string mnist = tmp.file("mnist");
  save_tfjs(Model(mnist_node_spec()), mnist);
  EXPECT_NE(thrown([&] {
              load_model_sample(mnist, data, 3, cache);
            }).find("the model takes MNIST's 28x28 digits; " + data + " is a folder of images"),
            std::string::npos);
  const ServeSample digits = load_model_sample(mnist, idx, 3, cache);
  EXPECT_EQ(digits.source, "mnist");
  EXPECT_EQ(digits.images.size(), 3U * 784);
}

// A folder without test/: the files history.json says the training held out.
TEST(ServeTest, FlatFolderSampleIsTheHeldOutFiles) {
  TempDir tmp;
  const std::string model = tmp.file("model");
  const std::string data = tmp.file("data");
  save_folder_model(model);
  for (int i = 0; i < 4; ++i) {
    write_folder_png(data + "/x/" + std::to_string(i) + ".png", static_cast<uint8_t>(10 * i));
    write_folder_png(data + "/y/" + std::to_string(i) + ".png", static_cast<uint8_t>(100 + i));
  }
  const std::string cache = tmp.file("cache");
  EXPECT_EQ(load_model_sample(model, data, 100, cache).labels.size(), 8U);  // no record: all
  write_text(
      model + "/history.json",
      nlohmann::json(
          {{"data", {{"folder", data}, {"files", {{"test", {"x/2.png", "y/0.png", "gone.png"}}}}}}})
          .dump());
  const ServeSample s = load_model_sample(model, "", 100, cache);
  EXPECT_EQ(s.labels, std::vector<int64_t>({0, 1}));
  ASSERT_EQ(s.images.size(), 2U * 3 * 4 * 3);
  EXPECT_EQ(static_cast<int>(static_cast<uint8_t>(s.images[0])), 20);
  EXPECT_EQ(static_cast<int>(static_cast<uint8_t>(s.images[36])), 100);
  // Another folder than the record's: its own files.
  const std::string copy = tmp.file("copy");
  std::filesystem::copy(data, copy, std::filesystem::copy_options::recursive);
  EXPECT_EQ(load_model_sample(model, copy, 100, cache).labels.size(), 8U);
}

// However many images are asked for, the sample's bytes stay within
// kMaxSampleBytes: 2048x2048 grayscale images are 4 MiB each, so 8 of them.
TEST(ServeTest, FolderSampleIsBoundedInBytes) {
  TempDir tmp;
  const std::string model = tmp.file("model");
  const std::string data = tmp.file("data");
  save_folder_model(model, 2048, 2048, ColorMode::kGrayscale);
  write_folder_png(data + "/train/x/0.png", 1);
  write_folder_png(data + "/train/y/0.png", 2);
  for (int i = 0; i < 6; ++i) {
    write_folder_png(data + "/test/x/" + std::to_string(i) + ".png", 1);
    write_folder_png(data + "/test/y/" + std::to_string(i) + ".png", 2);
  }
  const ServeSample s = load_model_sample(model, data, 10000, tmp.file("cache"));
  EXPECT_EQ(s.labels.size(), 8U);
  EXPECT_EQ(static_cast<int64_t>(s.images.size()), kMaxSampleBytes);
  EXPECT_EQ(std::vector<int64_t>({s.height, s.width, s.channels}),
            std::vector<int64_t>({2048, 2048, 1}));
}

RequestHead head(const std::string& method,
                 std::vector<std::string> lengths = {},
                 std::vector<std::string> encodings = {},
                 size_t headers = 3) {
  return RequestHead{method, headers, std::move(lengths), std::move(encodings)};
}

TEST(ServeTest, PlainRequestsGoOn) {
  EXPECT_EQ(request_refusal(head("GET")), 0);
  EXPECT_EQ(request_refusal(head("HEAD")), 0);
  EXPECT_EQ(request_refusal(head("OPTIONS")), 0);
  EXPECT_EQ(request_refusal(head("GET", {"0"})), 0);
  EXPECT_EQ(request_refusal(head("GET", {}, {}, kMaxRequestHeaders)), 0);
  // Bodies that fit go on (to a 405).
  EXPECT_EQ(request_refusal(head("POST", {"4096"})), 0);
  EXPECT_EQ(request_refusal(head("POST", {"7", "7"})), 0);
  EXPECT_EQ(request_refusal(head("POST", {}, {"chunked"})), 0);
}

TEST(ServeTest, TooManyHeadersAre431) {
  EXPECT_EQ(request_refusal(head("GET", {}, {}, kMaxRequestHeaders + 1)), 431);
  EXPECT_EQ(request_refusal(head("GET", {}, {}, 100000)), 431);
}

TEST(ServeTest, BodiesOnGetHeadOptionsAre400) {
  for (const char* method : {"GET", "HEAD", "OPTIONS"}) {
    EXPECT_EQ(request_refusal(head(method, {"1"})), 400) << method;
    EXPECT_EQ(request_refusal(head(method, {"1000000000"})), 400) << method;
    EXPECT_EQ(request_refusal(head(method, {}, {"chunked"})), 400) << method;
    EXPECT_EQ(request_refusal(head(method, {}, {"identity"})), 400) << method;
  }
}

TEST(ServeTest, BadContentLengthsAre400) {
  for (const char* bad : {"", "-1", "+5", "abc", "5 ", " 5", "0x10", "1e3", "100000000000000000000",
                          "18446744073709551616"}) {
    EXPECT_EQ(request_refusal(head("POST", {bad})), 400) << "'" << bad << "'";
    EXPECT_EQ(request_refusal(head("GET", {bad})), 400) << "'" << bad << "'";
  }
  EXPECT_EQ(request_refusal(head("POST", {"1", "5000000"})), 400);    // differ
  EXPECT_EQ(request_refusal(head("POST", {"5"}, {"chunked"})), 400);  // smuggling
}

TEST(ServeTest, BodiesOverTheBoundAre413) {
  EXPECT_EQ(request_refusal(head("POST", {"4097"})), 413);
  EXPECT_EQ(request_refusal(head("PUT", {"1000000000000000000"})), 413);
  EXPECT_EQ(request_refusal(head("POST", {"9999999999999999999"})), 413);
}

std::vector<uint8_t> to_bytes(const std::string& s) { return {s.begin(), s.end()}; }

/// model.json naming `files`, as one group.
std::string manifest_naming(const std::vector<std::string>& files) {
  return nlohmann::json(
             {{"modelTopology", nlohmann::json::object()},
              {"weightsManifest", {{{"paths", files}, {"weights", nlohmann::json::array()}}}}})
      .dump();
}

/// Replaces DIR/NAME by a rename, as every save of mnist-train does.
void replace_file(const std::string& dir, const std::string& name, const std::string& content) {
  test::write_bytes(dir + "/.staged", to_bytes(content));
  std::filesystem::rename(dir + "/.staged", dir + "/" + name);
}

std::string held_bytes(const ModelVersion& version, const std::string& path) {
  const auto& file = version.files.at(path);
  std::string out(file->size, '\0');
  EXPECT_EQ(::pread(file->fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
  return out;
}

TEST(ServeTest, ModelVersionsKeepEachVersionWholeAsItIsReplaced) {
  TempDir tmp;
  const std::string dir = tmp.file("m");
  std::filesystem::create_directories(dir);
  replace_file(dir, "weights.bin", "old weights");
  replace_file(dir, "model.json", manifest_naming({"./weights.bin", "../out.bin", "gone.bin"}));
  ModelVersions versions(dir, 2);
  const auto v1 = versions.current();
  ASSERT_NE(v1, nullptr);
  EXPECT_EQ(versions.current(), v1) << "unchanged on disk: the same version";
  EXPECT_TRUE(std::all_of(v1->id.begin(), v1->id.end(), [](char c) {
    return std::isxdigit(c) || c == '-';
  })) << v1->id;
  const auto served = nlohmann::json::parse(v1->model_json);
  EXPECT_EQ(
      served["weightsManifest"][0]["paths"],
      nlohmann::json({"v/" + v1->id + "/weights.bin", "../out.bin", "v/" + v1->id + "/gone.bin"}))
      << "accepted paths name the version, refused ones stay as they are";
  EXPECT_EQ(v1->files.size(), 1u) << "gone.bin is missing: a 404";
  EXPECT_EQ(held_bytes(*v1, "weights.bin"), "old weights");

  // A new model: the old version still reads the old bytes.
  replace_file(dir, "weights.bin", "new weights!");
  const auto v2 = versions.current();
  ASSERT_NE(v2, nullptr);
  EXPECT_NE(v2->id, v1->id);
  EXPECT_EQ(held_bytes(*v2, "weights.bin"), "new weights!");
  EXPECT_EQ(held_bytes(*versions.find(v1->id), "weights.bin"), "old weights");
  // A file that appears is a change too.
  test::write_bytes(dir + "/gone.bin", to_bytes("here"));
  const auto v3 = versions.current();
  EXPECT_NE(v3, v2);
  EXPECT_EQ(held_bytes(*v3, "gone.bin"), "here");
  EXPECT_EQ(versions.find(v1->id), nullptr) << "only the 2 newest are kept";
  EXPECT_NE(versions.find(v2->id), nullptr);
  EXPECT_EQ(versions.find("nope"), nullptr);
  EXPECT_EQ(held_bytes(*v1, "weights.bin"), "old weights") << "a download under way keeps its file";

  // model.json that is not JSON, or missing: nothing to version.
  replace_file(dir, "model.json", "{not json");
  EXPECT_EQ(versions.current(), nullptr);
  std::filesystem::remove(dir + "/model.json");
  EXPECT_EQ(versions.current(), nullptr);
}

TEST(ServeTest, ModelVersionsWaitForASaveUnderWay) {
  TempDir tmp;
  const std::string dir = tmp.file("m");
  std::filesystem::create_directories(dir);
  replace_file(dir, "weights.bin", "A");
  replace_file(dir, "model.json", manifest_naming({"weights.bin"}));
  ModelVersions versions(dir);
  ASSERT_NE(versions.current(), nullptr);
  std::optional<FolderLock> writer(FolderLock::take(dir, "model folder"));
  replace_file(dir, "weights.bin", "B");  // a save half done: weights, not yet model.json
  std::thread finish([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    replace_file(dir, "model.json", manifest_naming({"weights.bin", "more.bin"}));
    test::write_bytes(dir + "/more.bin", to_bytes("C"));
    writer.reset();
  });
  const auto v = versions.current();  // waits for the writer's lock
  finish.join();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(held_bytes(*v, "weights.bin"), "B");
  EXPECT_EQ(held_bytes(*v, "more.bin"), "C");
}

}  // namespace
}  // namespace mnist
