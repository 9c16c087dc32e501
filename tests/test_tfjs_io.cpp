// TF.js export: model.json equals what TF.js writes, weights.bin holds every
// weight in TF.js layout, files are replaced atomically.
#include "mnist/tfjs_io.hpp"

#include <unistd.h>

#include <c10/util/Half.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/data.hpp"
#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
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

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

float float_at(const std::vector<char>& bytes, size_t byte_offset, size_t index) {
  float v = 0.0F;
  std::memcpy(&v, bytes.data() + byte_offset + 4 * index, 4);
  return v;
}

TEST(TfjsIoTest, ModelJsonIsWhatTfjsWritesGeneratedByAside) {
  Model model(mnist_node_spec());
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
  Model model(mnist_node_spec());
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
  Model model(mnist_node_spec());
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
  EXPECT_EQ(float_at(bytes, 1280, conv2_index),
            model->weight("conv2d_Conv2D2/kernel")[7][5][1][2].item<float>());
  // conv2d_Conv2D4/bias at byte 259712.
  EXPECT_EQ(float_at(bytes, 259712, 63), model->weight("conv2d_Conv2D4/bias")[63].item<float>());
  // dense_Dense1/kernel at byte 259968, TF.js [in,out]: (in=300, out=17) is
  // torch weight[17][300].
  EXPECT_EQ(float_at(bytes, 259968, 300 * 512 + 17),
            model->weight("dense_Dense1/kernel")[17][300].item<float>());
  // dense_Dense2/bias: the last 10 floats.
  EXPECT_EQ(float_at(bytes, 2379648, 9), model->weight("dense_Dense2/bias")[9].item<float>());
}

TEST(TfjsIoTest, SaveWritesBothFilesAndNoTemporaries) {
  test::TempDir dir;
  const std::string out = dir.file("nested/model");
  Model model(mnist_node_spec());
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
  Model model(mnist_node_spec());
  save_tfjs(model, dir.path().string());
  const std::vector<char> text = read_all(dir.file("model.json"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 0);
}

// ---- Teachable Machine's metadata.json ------------------------------------

/// mnist-node's model whose metadata names Fashion-MNIST's ten classes.
Model fashion_model() {
  Model model(mnist_node_spec());
  model->set_metadata(with_labels(nullptr, DatasetKind::kFashionMnist, all_labels()));
  return model;
}

TEST(TeachableMachineTest, MetadataInItsFormWhenClassesAreNamed) {
  const Model model = fashion_model();
  const ordered_json doc = teachable_machine_metadata(model, "2026-12-05T05:30:00.123Z");
  // The Metadata interface's keys, in its order; no tmVersion.
  std::vector<std::string> keys;
  for (const auto& [key, value] : doc.items()) {
    keys.push_back(key);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"tfjsVersion", "packageVersion", "packageName",
                                            "timeStamp", "userMetadata", "modelName", "labels",
                                            "imageSize", "grayscale"}));
  EXPECT_EQ(doc["tfjsVersion"], "4.22.0");
  EXPECT_EQ(doc["packageName"], "mnist-train");
  EXPECT_EQ(generated_by(), "mnist-train v" + doc["packageVersion"].get<std::string>());
  EXPECT_EQ(doc["timeStamp"], "2026-12-05T05:30:00.123Z");
  EXPECT_EQ(doc["modelName"], model->spec().name);
  EXPECT_EQ(doc["labels"], ordered_json(class_names(DatasetKind::kFashionMnist)));
  EXPECT_EQ(doc["imageSize"], 28);
  EXPECT_EQ(doc["grayscale"], true);
  EXPECT_EQ(doc["userMetadata"].dump(),
            R"({"imageSize":[28,28],"colorMode":"grayscale","inputRange":[0,1]})");
}

/// A non-square RGB input: Teachable Machine's library always crops a
/// square, so no imageSize for it; userMetadata has the true [h, w].
TEST(TeachableMachineTest, NonSquareRgbInput) {
  ModelSpec spec = mnist_node_spec();
  spec.input_shape = {20, 32, 3};
  Model model(spec);
  model->set_metadata({{"classNames", {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}},
                       {"imageSize", {20, 32}},
                       {"colorMode", "rgb"}});
  const ordered_json doc = teachable_machine_metadata(model, "t");
  EXPECT_FALSE(doc.contains("imageSize")) << doc.dump();
  EXPECT_EQ(doc["grayscale"], false);
  EXPECT_EQ(doc["labels"][9], "j");
  EXPECT_EQ(doc["userMetadata"].dump(),
            R"({"imageSize":[20,32],"colorMode":"rgb","inputRange":[0,1]})");
}

TEST(TeachableMachineTest, NoMetadataWithoutOneNamePerOutput) {
  Model plain(mnist_node_spec());
  EXPECT_TRUE(teachable_machine_metadata(plain, "t").is_null());
  Model wrong(mnist_node_spec());
  wrong->set_metadata({{"classNames", {"a", "b", "c"}}});  // 3 names, 10 outputs
  EXPECT_TRUE(teachable_machine_metadata(wrong, "t").is_null());
  wrong->set_metadata({{"classNames", ordered_json::array({1, 2, 3, 4, 5, 6, 7, 8, 9, 10})}});
  EXPECT_TRUE(teachable_machine_metadata(wrong, "t").is_null());
}

TEST(TeachableMachineTest, TimeStampIsJavaScriptsIsoString) {
  const std::string t = iso_time_stamp();
  ASSERT_EQ(t.size(), 24U) << t;
  for (const size_t i : {4U, 7U}) {
    EXPECT_EQ(t[i], '-') << t;
  }
  EXPECT_EQ(t[10], 'T');
  EXPECT_EQ(t[13], ':');
  EXPECT_EQ(t[16], ':');
  EXPECT_EQ(t[19], '.');
  EXPECT_EQ(t[23], 'Z');
  EXPECT_EQ(t.substr(0, 2), "20");
}

/// A save writes metadata.json beside a model whose classes are named; a
/// save of a plain MNIST model into the same folder leaves none behind (and
/// writes exactly what it wrote before); other labels replace the old ones.
TEST(TeachableMachineTest, SavesWriteReplaceAndRemoveIt) {
  test::TempDir dir;
  const std::string out = dir.file("model");
  Model named = fashion_model();
  save_tfjs(named, out);
  const ordered_json first = read_json(out + "/metadata.json");
  EXPECT_EQ(first["labels"][9], "Ankle boot");
  EXPECT_EQ(read_json(out + "/model.json")["userDefinedMetadata"]["classNames"], first["labels"]);

  Model other(mnist_node_spec());
  std::vector<std::string> names;
  for (int c = 0; c < 10; ++c) {
    names.push_back("class " + std::to_string(c));
  }
  other->set_metadata({{"classNames", names}});
  save_tfjs(other, out);  // replacing a model with other labels
  EXPECT_EQ(read_json(out + "/metadata.json")["labels"], ordered_json(names));

  Model plain(mnist_node_spec());
  save_tfjs(plain, out);  // a plain MNIST model: no metadata.json survives
  EXPECT_FALSE(fs::exists(out + "/metadata.json"));
  EXPECT_FALSE(read_json(out + "/model.json").contains("userDefinedMetadata"));
  test::TempDir fresh;
  save_tfjs(plain, fresh.path().string());
  EXPECT_EQ(read_all(out + "/model.json"), read_all(fresh.file("model.json")));
  EXPECT_FALSE(fs::exists(fresh.file("metadata.json")));

  // A new folder with a metadata.json another model left: replaced too.
  test::TempDir stale;
  write_text_file(stale.file("metadata.json"), R"({"labels":["old"]})");
  save_tfjs(plain, stale.path().string());
  EXPECT_FALSE(fs::exists(stale.file("metadata.json")));
  save_tfjs(named, stale.path().string());
  EXPECT_EQ(read_json(stale.file("metadata.json"))["labels"][0], "T-shirt/top");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(stale.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 3) << "model.json, weights.bin, metadata.json: no temporaries";
}

/// metadata.json that cannot be written (its temporary name taken by a
/// folder): a new folder gets nothing; a model being replaced by one of
/// other classes is replaced, its old metadata.json gone, and the error says
/// so. Never a metadata.json naming another model's classes.
TEST(TeachableMachineTest, AFailedMetadataWriteLeavesNoStaleLabels) {
  const std::string blocker = ".metadata.json.tmp." + std::to_string(::getpid());
  const auto save_error = [](const Model& m, const std::string& dir) -> std::string {
    try {
      save_tfjs(m, dir);
    } catch (const IoError& e) {
      return e.what();
    }
    return "";
  };
  test::TempDir fresh;
  fs::create_directory(fresh.file(blocker));
  const std::string first = save_error(fashion_model(), fresh.path().string());
  EXPECT_NE(first.find("nothing was saved in"), std::string::npos) << first;
  EXPECT_FALSE(fs::exists(fresh.file("model.json")));
  EXPECT_FALSE(fs::exists(fresh.file("weights.bin")));
  EXPECT_FALSE(fs::exists(fresh.file("metadata.json")));

  test::TempDir dir;
  save_tfjs(fashion_model(), dir.path().string());
  ASSERT_TRUE(fs::exists(dir.file("metadata.json")));
  Model other(mnist_node_spec());
  std::vector<std::string> names;
  for (int c = 0; c < 10; ++c) {
    names.push_back("other " + std::to_string(c));
  }
  other->set_metadata({{"classNames", names}});
  fs::create_directory(dir.file(blocker));
  const std::string replaced = save_error(other, dir.path().string());
  EXPECT_NE(replaced.find("holds the new model, complete but for its metadata.json"),
            std::string::npos)
      << replaced;
  EXPECT_FALSE(fs::exists(dir.file("metadata.json")));
  EXPECT_EQ(load_tfjs(dir.path().string())->spec().metadata["classNames"], ordered_json(names));
  fs::remove(dir.file(blocker));
  save_tfjs(other, dir.path().string());  // the next save writes it
  EXPECT_EQ(read_json(dir.file("metadata.json"))["labels"], ordered_json(names));
}

// ---- Loading ---------------------------------------------------------------

/// A saved mnist-node model with random weights (biases too) in `dir`.
Model saved_model(const std::string& dir, uint64_t seed = 21) {
  torch::manual_seed(seed);
  Model model(mnist_node_spec());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) {
      p.uniform_(-0.2, 0.2);
    }
  }
  save_tfjs(model, dir);
  return model;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

/// The FormatError/IoError message load_tfjs throws for `dir`, or "".
std::string load_error(const std::string& dir) {
  try {
    load_tfjs(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TfjsLoadTest, RoundTripGivesIdenticalWeightsAndPredictions) {
  test::TempDir dir;
  Model saved = saved_model(dir.path().string());
  Model loaded = load_tfjs(dir.path().string());
  EXPECT_EQ(count_params(loaded), 594922);
  for (const auto& [name, tensor] : saved->tfjs_weights()) {
    EXPECT_TRUE(loaded->weight(name).equal(tensor)) << name;
  }
  const at::Tensor x = at::rand({4, 1, 28, 28});
  EXPECT_TRUE(predict_proba(loaded, x, 2).equal(predict_proba(saved, x, 2)));
  EXPECT_EQ(summary_text(loaded), summary_text(saved));
  // Saving the loaded model writes the same files again.
  test::TempDir again;
  save_tfjs(loaded, again.path().string());
  EXPECT_EQ(read_all(again.file("weights.bin")), read_all(dir.file("weights.bin")));
  EXPECT_EQ(read_json(again.file("model.json")).dump(), read_json(dir.file("model.json")).dump());
}

TEST(TfjsLoadTest, AcceptsShardedWeightsAndSeveralGroups) {
  test::TempDir dir;
  Model saved = saved_model(dir.path().string());
  const std::vector<char> bytes = read_all(dir.file("weights.bin"));
  ordered_json doc = read_json(dir.file("model.json"));
  // Group 0: the first 4 weights in two shards split mid-weight; group 1: the rest.
  auto all = doc["weightsManifest"][0]["weights"];
  ordered_json first = ordered_json::array();
  ordered_json rest = ordered_json::array();
  size_t first_bytes = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    size_t n = 4;
    for (const auto& d : all[i]["shape"]) {
      n *= d.get<size_t>();
    }
    (i < 4 ? first : rest).push_back(all[i]);
    first_bytes += i < 4 ? n : 0;
  }
  test::write_bytes(dir.file("g1-shard1of2.bin"),
                    std::vector<uint8_t>(bytes.begin(), bytes.begin() + 1000));
  test::write_bytes(
      dir.file("g1-shard2of2.bin"),
      std::vector<uint8_t>(bytes.begin() + 1000, bytes.begin() + static_cast<long>(first_bytes)));
  test::write_bytes(
      dir.file("g2.bin"),
      std::vector<uint8_t>(bytes.begin() + static_cast<long>(first_bytes), bytes.end()));
  doc["weightsManifest"] = ordered_json::array(
      {{{"paths", {"g1-shard1of2.bin", "g1-shard2of2.bin"}}, {"weights", first}},
       {{"paths", {"g2.bin"}}, {"weights", rest}}});
  write_text(dir.file("model.json"), doc.dump());
  std::filesystem::remove(dir.file("weights.bin"));
  Model loaded = load_tfjs(dir.file("model.json"));
  for (const auto& [name, tensor] : saved->tfjs_weights()) {
    EXPECT_TRUE(loaded->weight(name).equal(tensor)) << name;
  }
}

TEST(TfjsLoadTest, HalfToFloatIsExact) {
  EXPECT_EQ(half_to_float(0x3C00), 1.0f);
  EXPECT_EQ(half_to_float(0xC000), -2.0f);
  EXPECT_EQ(half_to_float(0x7BFF), 65504.0f);               // the largest half
  EXPECT_EQ(half_to_float(0x0400), std::ldexp(1.0f, -14));  // the smallest normal
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));  // the smallest subnormal
  EXPECT_EQ(half_to_float(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(half_to_float(0x3555), 0x1.554p-2f);  // 1/3 rounded to half
  EXPECT_TRUE(std::signbit(half_to_float(0x8000)) && half_to_float(0x8000) == 0.0f);
  EXPECT_TRUE(std::isinf(half_to_float(0x7C00)) && half_to_float(0x7C00) > 0);
  EXPECT_TRUE(std::isnan(half_to_float(0x7E00)));
  // Every finite half survives a round trip through float and back by value.
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    ASSERT_EQ(static_cast<double>(f),
              std::ldexp(static_cast<double>(h < 0x400 ? h : (h & 0x3FF) | 0x400),
                         h < 0x400 ? -24 : static_cast<int>(h >> 10) - 25))
        << h;
  }
}

TEST(TfjsLoadTest, AffineValuesAreQTimesScalePlusMin) {
  const std::vector<char> q8 = {0, 1, static_cast<char>(255)};
  const auto v8 = decode_weight_values(q8.data(), 3, {WeightStorage::kUint8, -0.5, 1.0 / 255});
  EXPECT_EQ(v8, (std::vector<float>{-0.5f, static_cast<float>(1.0 / 255 - 0.5), 0.5f}));
  const std::vector<char> q16 = {1, 2};  // little-endian 0x0201
  const auto v16 = decode_weight_values(q16.data(), 1, {WeightStorage::kUint16, 1.0, 0.25});
  EXPECT_EQ(v16, std::vector<float>{static_cast<float>(0x0201 * 0.25 + 1.0)});
  // Beyond float's range: infinity (then refused as not finite), no UB.
  const auto big = decode_weight_values(q8.data(), 3, {WeightStorage::kUint8, -1e300, 1e300});
  EXPECT_EQ(big[0], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(big[1], 0.0f);
  EXPECT_EQ(big[2], std::numeric_limits<float>::infinity());
}

/// The saved model's weights stored as `storage` (uint8/uint16 with the
/// converter's nudged range, float16 by rounding), shard files cut at odd
/// offsets. Returns the values the quantized files hold, dequantized, in
/// manifest order.
std::vector<float> quantize_folder(const std::string& dir, WeightStorage storage) {
  ordered_json doc = read_json(dir + "/model.json");
  const std::vector<char> bytes = read_all(dir + "/weights.bin");
  std::vector<char> out;
  std::vector<float> expected;
  size_t offset = 0;
  for (auto& spec : doc["weightsManifest"][0]["weights"]) {
    size_t n = 1;
    for (const auto& d : spec["shape"]) {
      n *= d.get<size_t>();
    }
    const std::vector<float> w = decode_weight_values(bytes.data() + offset, n, {});
    offset += 4 * n;
    WeightEncoding e{storage, 0.0, 1.0};
    std::vector<char> stored;
    if (storage == WeightStorage::kFloat16) {
      spec["quantization"] = {{"dtype", "float16"}, {"original_dtype", "float32"}};
      for (const float v : w) {
        const uint16_t h = c10::Half(v).x;
        stored.push_back(static_cast<char>(h & 0xFF));
        stored.push_back(static_cast<char>(h >> 8));
      }
    } else {
      const double top = storage == WeightStorage::kUint8 ? 255 : 65535;
      const auto [lo, hi] = std::minmax_element(w.begin(), w.end());
      e.scale = (*hi - *lo) / top;
      e.min = -std::nearbyint(-*lo / e.scale) * e.scale;
      spec["quantization"] = {{"dtype", storage == WeightStorage::kUint8 ? "uint8" : "uint16"},
                              {"min", e.min},
                              {"scale", e.scale},
                              {"original_dtype", "float32"}};
      for (const float v : w) {
        const auto q =
            static_cast<uint32_t>(std::clamp(std::nearbyint((v - e.min) / e.scale), 0.0, top));
        stored.push_back(static_cast<char>(q & 0xFF));
        if (storage == WeightStorage::kUint16) {
          stored.push_back(static_cast<char>(q >> 8));
        }
      }
    }
    const std::vector<float> values = decode_weight_values(stored.data(), n, e);
    expected.insert(expected.end(), values.begin(), values.end());
    out.insert(out.end(), stored.begin(), stored.end());
  }
  const size_t cut = out.size() / 2 | 1;
  test::write_bytes(dir + "/group1-shard1of2.bin",
                    std::vector<uint8_t>(out.begin(), out.begin() + static_cast<long>(cut)));
  test::write_bytes(dir + "/group1-shard2of2.bin",
                    std::vector<uint8_t>(out.begin() + static_cast<long>(cut), out.end()));
  doc["weightsManifest"][0]["paths"] = {"group1-shard1of2.bin", "group1-shard2of2.bin"};
  write_text(dir + "/model.json", doc.dump());
  std::filesystem::remove(dir + "/weights.bin");
  return expected;
}

TEST(TfjsLoadTest, QuantizedWeightsLoadDequantized) {
  for (const WeightStorage storage :
       {WeightStorage::kUint8, WeightStorage::kUint16, WeightStorage::kFloat16}) {
    test::TempDir dir;
    Model saved = saved_model(dir.path().string());
    const auto expected = quantize_folder(dir.path().string(), storage);
    Model loaded = load_tfjs(dir.path().string());
    const std::vector<char> as_float = weights_bin(loaded);  // TF.js layout, float32
    EXPECT_EQ(decode_weight_values(as_float.data(), expected.size(), {}), expected)
        << "dequantized as TF.js does";
    // Weights are in [-0.2, 0.2]: uint8 within half a step (0.4 / 255 / 2),
    // uint16 and float16 much closer.
    const double tolerance = storage == WeightStorage::kUint8 ? 0.2 / 255 + 1e-7 : 1e-4;
    for (const auto& [name, tensor] : loaded->tfjs_weights()) {
      EXPECT_LE((tensor - saved->weight(name)).abs().max().item<double>(), tolerance) << name;
    }
  }
}

TEST(TfjsIoTest, QuantizingAsTheConverterKeepsZeroExact) {
  const std::vector<float> w = {-0.3f, 0.0f, 0.1f, 0.7f, 0.25f};
  for (const WeightStorage storage : {WeightStorage::kUint8, WeightStorage::kUint16}) {
    const StoredWeight s = store_weight_values(w, storage);
    ASSERT_EQ(s.bytes.size(), w.size() * bytes_per_value(storage));
    const std::vector<float> back = decode_weight_values(s.bytes.data(), w.size(), s.encoding);
    EXPECT_EQ(back[1], 0.0f) << storage_name(storage) << ": 0 is a value exactly";
    const double top = storage == WeightStorage::kUint8 ? 255 : 65535;
    EXPECT_DOUBLE_EQ(s.encoding.scale, 1.0 / top);  // (0.7 - -0.3) / top
    for (size_t i = 0; i < w.size(); ++i) {
      EXPECT_LE(std::fabs(back[i] - w[i]), s.encoding.scale * 0.5 + 1e-6) << i;
    }
  }
  // All positive: no nudging, min is the smallest value.
  const StoredWeight pos = store_weight_values({0.5f, 1.5f}, WeightStorage::kUint8);
  EXPECT_EQ(pos.encoding.min, 0.5);
  EXPECT_EQ(pos.bytes, (std::vector<char>{0, static_cast<char>(255)}));
  // A constant tensor: all zeros, scale 1, min the value.
  const StoredWeight constant = store_weight_values({0.25f, 0.25f}, WeightStorage::kUint16);
  EXPECT_EQ(constant.bytes, std::vector<char>(4, 0));
  EXPECT_EQ(constant.encoding.min, 0.25);
  EXPECT_EQ(constant.encoding.scale, 1.0);
  // float16: round to nearest even, then back exactly.
  const StoredWeight half =
      store_weight_values({1.0f, 1.0f / 3, 65504.0f}, WeightStorage::kFloat16);
  EXPECT_EQ(decode_weight_values(half.bytes.data(), 3, half.encoding),
            (std::vector<float>{1.0f, 0x1.554p-2f, 65504.0f}));
  EXPECT_EQ(parse_storage("uint16"), WeightStorage::kUint16);
  EXPECT_EQ(parse_storage("int8"), std::nullopt);
}

TEST(TfjsIoTest, QuantizedSavesLoadAsTheyWereStored) {
  for (const WeightStorage storage :
       {WeightStorage::kUint8, WeightStorage::kUint16, WeightStorage::kFloat16}) {
    test::TempDir dir;
    Model model = saved_model(dir.file("float"));
    save_tfjs(model, dir.path().string(), {storage});
    const ordered_json doc = read_json(dir.file("model.json"));
    const ordered_json& entry = doc["weightsManifest"][0]["weights"][0];
    EXPECT_EQ(entry["dtype"], "float32") << "the converter keeps the original dtype";
    EXPECT_EQ(entry["quantization"]["dtype"], storage_name(storage));
    EXPECT_EQ(entry["quantization"]["original_dtype"], "float32");
    EXPECT_EQ(entry["quantization"].contains("scale"), storage != WeightStorage::kFloat16);
    EXPECT_EQ(std::filesystem::file_size(dir.file("weights.bin")),
              594922 * bytes_per_value(storage));
    Model loaded = load_tfjs(dir.path().string());
    // Loading gives exactly the dequantized values; saving them quantized
    // again gives the same bytes (the quantization is idempotent).
    test::TempDir again;
    save_tfjs(loaded, again.path().string(), {storage});
    EXPECT_EQ(read_all(again.file("weights.bin")), read_all(dir.file("weights.bin")))
        << storage_name(storage);
  }
}

/// The names of the visible files in `dir`, sorted.
std::vector<std::string> visible_files(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.front() != '.') {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(TfjsIoTest, ShardNamesAreTheConvertersAndCountAtLeastOne) {
  EXPECT_EQ(weight_file_names(100, 0), (std::vector<std::string>{"weights.bin"}));
  EXPECT_EQ(weight_file_names(10, 3),
            (std::vector<std::string>{"group1-shard1of4.bin", "group1-shard2of4.bin",
                                      "group1-shard3of4.bin", "group1-shard4of4.bin"}));
  EXPECT_EQ(weight_file_names(9, 3).size(), 3U);
  EXPECT_EQ(weight_file_names(0, 3), (std::vector<std::string>{"group1-shard1of1.bin"}));
  Model model(mnist_node_spec());
  EXPECT_EQ(stored_weight_bytes(model, WeightStorage::kFloat32), 2379688U);
  EXPECT_EQ(stored_weight_bytes(model, WeightStorage::kUint8), 594922U);
  EXPECT_EQ(save_format_problem(model, {WeightStorage::kFloat32, 0}), std::nullopt);
  EXPECT_EQ(save_format_problem(model, {WeightStorage::kUint8, 594922 / 256 + 1}), std::nullopt);
  const auto problem = save_format_problem(model, {WeightStorage::kFloat32, 1000});
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(*problem,
            "--weight-shard-size 1000 would cut the 2379688 bytes of float32 weights into 2380 "
            "files; at most 256 are written (use a size of at least 9296)");
  test::TempDir dir;
  EXPECT_THROW(save_tfjs(model, dir.path().string(), {WeightStorage::kFloat32, 1000}), ConfigError);
  EXPECT_TRUE(visible_files(dir.path().string()).empty()) << "nothing written";
}

TEST(TfjsIoTest, ShardedSavesCutTheBytesAndReplaceEachOther) {
  test::TempDir dir;
  const std::string out = dir.path().string();
  Model a = saved_model(dir.file("a"), 3);
  Model b = saved_model(dir.file("b"), 4);
  const std::vector<char> a_bytes = weights_bin(a);
  // A size that cuts tensors in the middle (and not at a float boundary).
  const SavedFiles saved = save_tfjs(a, out, {WeightStorage::kFloat32, 1000003});
  EXPECT_EQ(saved.weight_bytes, 2379688U);
  const std::vector<std::string> shards{"group1-shard1of3.bin", "group1-shard2of3.bin",
                                        "group1-shard3of3.bin"};
  EXPECT_EQ(saved.weight_files, shards);
  EXPECT_EQ(read_json(dir.file("model.json"))["weightsManifest"][0]["paths"], shards);
  EXPECT_EQ(fs::file_size(dir.file("group1-shard1of3.bin")), 1000003U);
  EXPECT_EQ(fs::file_size(dir.file("group1-shard2of3.bin")), 1000003U);
  EXPECT_EQ(fs::file_size(dir.file("group1-shard3of3.bin")), 379682U);
  std::vector<char> joined;
  for (const std::string& s : shards) {
    const std::vector<char> part = read_all(dir.file(s));
    joined.insert(joined.end(), part.begin(), part.end());
  }
  EXPECT_EQ(joined, a_bytes) << "the shards are weights.bin cut in three";
  Model loaded = load_tfjs(out);
  for (const auto& [name, tensor] : a->tfjs_weights()) {
    EXPECT_TRUE(loaded->weight(name).equal(tensor)) << name;
  }
  // Files that are not a model's weight files stay; stale shards of another
  // count go once the new model.json names its own.
  write_text(dir.file("notes.txt"), "mine");
  write_text(dir.file("my-model.weights.bin"), "mine too");
  write_text(dir.file("group1-shard9of9.bin"), "a stale shard");
  save_tfjs(b, out, {WeightStorage::kUint8, 300000});
  const std::vector<std::string> after_b{"a",
                                         "b",
                                         "group1-shard1of2.bin",
                                         "group1-shard2of2.bin",
                                         "model.json",
                                         "my-model.weights.bin",
                                         "notes.txt"};
  EXPECT_EQ(visible_files(out), after_b);
  Model b_loaded = load_tfjs(out);
  EXPECT_TRUE(
      b_loaded->weight("dense_Dense2/bias").allclose(b->weight("dense_Dense2/bias"), 0, 0.01));
  // Back to one weights.bin: the shards go.
  save_tfjs(a, out);
  EXPECT_EQ(visible_files(out),
            (std::vector<std::string>{"a", "b", "model.json", "my-model.weights.bin", "notes.txt",
                                      "weights.bin"}));
  EXPECT_EQ(read_all(dir.file("weights.bin")), a_bytes);
  // A new folder gets its shards too, and nothing staged is left anywhere.
  save_tfjs(b, dir.file("fresh"), {WeightStorage::kFloat16, 1 << 20});
  EXPECT_EQ(
      visible_files(dir.file("fresh")),
      (std::vector<std::string>{"group1-shard1of2.bin", "group1-shard2of2.bin", "model.json"}));
  for (const std::string& d : {out, dir.file("fresh")}) {
    for (const auto& e : fs::directory_iterator(d)) {
      EXPECT_EQ(e.path().filename().string().rfind("weights.new-", 0), std::string::npos);
      EXPECT_NE(e.path().filename().string().front(), '.') << e.path();
    }
  }
}

TEST(TfjsIoTest, TrainableFalseIsReadAndWritten) {
  test::TempDir dir;
  Model model(mnist_node_spec());
  freeze_up_to(model, "1");
  save_tfjs(model, dir.path().string());
  ordered_json doc = read_json(dir.file("model.json"));
  const ordered_json& layers = doc["modelTopology"]["config"]["layers"];
  EXPECT_EQ(layers[0]["config"]["trainable"], false);
  EXPECT_EQ(layers[1]["config"]["trainable"], false);
  EXPECT_EQ(layers[2]["config"]["trainable"], true);
  Model loaded = load_tfjs(dir.path().string());
  EXPECT_FALSE(loaded->spec().layers[1]->trainable);
  EXPECT_EQ(count_trainable_params(loaded), count_trainable_params(model));
  // A loaded layer keeps its config; freezing it changes only "trainable".
  freeze_up_to(loaded, "conv2d_Conv2D3");
  test::TempDir again;
  save_tfjs(loaded, again.path().string());
  const ordered_json re = read_json(again.file("model.json"))["modelTopology"]["config"]["layers"];
  EXPECT_EQ(re[3]["config"]["trainable"], false);
  EXPECT_EQ(re[4]["config"]["trainable"], true);
  ordered_json expected = layers[3]["config"];
  expected["trainable"] = false;
  EXPECT_EQ(re[3]["config"].dump(), expected.dump()) << "same keys, same order";
  // "trainable" must be a boolean.
  doc["modelTopology"]["config"]["layers"][0]["config"]["trainable"] = "no";
  write_text(dir.file("model.json"), doc.dump());
  EXPECT_NE(load_error(dir.path().string())
                .find("layer 0 'conv2d_Conv2D1' (Conv2D): field \"trainable\" must be true or "
                      "false, found \"no\""),
            std::string::npos);
}

TEST(TfjsLoadTest, GlobalPoolingLayersLoadAndKeepdimsIsRefused) {
  test::TempDir dir;
  ModelSpec spec;
  spec.layers = {test::layer("Conv2D", "c", {{"filters", 3}, {"kernel_size", 3}}),
                 test::layer("GlobalMaxPooling2D", "g"),
                 test::layer("Dense", "d", {{"units", 10}, {"activation", "softmax"}})};
  Model model(spec);
  save_tfjs(model, dir.path().string());
  ordered_json doc = read_json(dir.file("model.json"));
  EXPECT_EQ(doc["modelTopology"]["config"]["layers"][1]["class_name"], "GlobalMaxPooling2D");
  EXPECT_EQ(doc["modelTopology"]["config"]["layers"][1]["config"].dump(),
            R"({"data_format":"channels_last","name":"g","trainable":true})");
  Model loaded = load_tfjs(dir.path().string());
  const at::Tensor x = at::rand({3, 1, 28, 28});
  EXPECT_TRUE(predict_proba(loaded, x, 3).equal(predict_proba(model, x, 3)));
  doc["modelTopology"]["config"]["layers"][1]["config"]["keepdims"] = true;
  write_text(dir.file("model.json"), doc.dump());
  EXPECT_NE(load_error(dir.path().string())
                .find("layer 1 'g' (GlobalMaxPooling2D): field \"keepdims\" is true (only false "
                      "is supported, as in TF.js)"),
            std::string::npos);
}

TEST(TfjsLoadTest, SeparableAndDepthwiseConvolutionsLoadAsTfjsWritesThem) {
  test::TempDir dir;
  ModelSpec spec;
  spec.layers = {test::layer("DepthwiseConv2D", "dw",
                             {{"kernel_size", 3}, {"depth_multiplier", 2}, {"padding", "same"}}),
                 test::layer("SeparableConv2D", "sep",
                             {{"filters", 5},
                              {"kernel_size", {2, 3}},
                              {"depth_multiplier", 3},
                              {"dilation_rate", {2, 1}},
                              {"activation", "relu"}}),
                 test::layer("Flatten", "f"),
                 test::layer("Dense", "d", {{"units", 10}, {"activation", "softmax"}})};
  Model model(spec);
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, tensor] : model->tfjs_weights()) {
      tensor.normal_(0.0, 0.3);
    }
  }
  save_tfjs(model, dir.path().string());
  ordered_json doc = read_json(dir.file("model.json"));
  const ordered_json& manifest = doc["weightsManifest"][0]["weights"];
  EXPECT_EQ(manifest[0]["name"], "dw/depthwise_kernel");
  EXPECT_EQ(manifest[0]["shape"], ordered_json::parse("[3,3,1,2]"));
  EXPECT_EQ(manifest[2]["name"], "sep/depthwise_kernel");
  EXPECT_EQ(manifest[2]["shape"], ordered_json::parse("[2,3,2,3]"));
  EXPECT_EQ(manifest[3]["name"], "sep/pointwise_kernel");
  EXPECT_EQ(manifest[3]["shape"], ordered_json::parse("[1,1,6,5]"));
  ordered_json& layers = doc["modelTopology"]["config"]["layers"];
  EXPECT_EQ(layers[1]["config"]["dilation_rate"], ordered_json::parse("[2,1]"));
  EXPECT_EQ(layers[1]["config"]["depth_multiplier"], 3);
  const at::Tensor x = at::rand({3, 1, 28, 28});
  Model same = load_tfjs(dir.path().string());
  EXPECT_TRUE(predict_proba(same, x, 3).equal(predict_proba(model, x, 3)));
  // TF.js 4.22 saves a SeparableConv2D without its depth_multiplier; the
  // depthwise kernel's last axis gives it, and a save writes it.
  layers[1]["config"].erase("depth_multiplier");
  write_text(dir.file("model.json"), doc.dump());
  Model loaded = load_tfjs(dir.path().string());
  EXPECT_EQ(loaded->weight("sep/depthwise_kernel").size(0), 3) << "[multiplier,in,kh,kw]";
  EXPECT_TRUE(predict_proba(loaded, x, 3).equal(predict_proba(model, x, 3)));
  test::TempDir again;
  save_tfjs(loaded, again.path().string());
  EXPECT_EQ(
      read_json(again.file(
          "model.json"))["modelTopology"]["config"]["layers"][1]["config"]["depth_multiplier"],
      3);
  // Regularizers of the depthwise and pointwise kernels are applied.
  layers[1]["config"]["depthwise_regularizer"] = {{"class_name", "L1L2"},
                                                  {"config", {{"l1", 0.0}, {"l2", 0.5}}}};
  layers[1]["config"]["pointwise_regularizer"] = {{"class_name", "L1L2"},
                                                  {"config", {{"l1", 0.25}, {"l2", 0.0}}}};
  write_text(dir.file("model.json"), doc.dump());
  Model regularized = load_tfjs(dir.path().string());
  const auto& sep_weights = regularized->weight_specs(1);
  EXPECT_EQ(sep_weights[0].name, "depthwise_kernel");
  EXPECT_EQ(sep_weights[0].penalty.l2, 0.5);
  EXPECT_EQ(sep_weights[1].name, "pointwise_kernel");
  EXPECT_EQ(sep_weights[1].penalty.l1, 0.25);
  EXPECT_TRUE(regularized->spec().layers[1]->training_problem.empty());
  const double expected =
      0.5 * regularized->weight("sep/depthwise_kernel").square().sum().item<double>() +
      0.25 * regularized->weight("sep/pointwise_kernel").abs().sum().item<double>();
  EXPECT_NEAR(regularized->regularization_loss().item<double>(), expected, 1e-5 * expected);
  // TF.js's DepthwiseConv2D computes no dilation whatever its config says.
  layers[0]["config"]["dilation_rate"] = {2, 2};
  write_text(dir.file("model.json"), doc.dump());
  EXPECT_NE(load_error(dir.path().string())
                .find("layer 0 'dw' (DepthwiseConv2D): field \"dilation_rate\" is [2,2]: TF.js "
                      "ignores a DepthwiseConv2D's dilation rate"),
            std::string::npos)
      << load_error(dir.path().string());
  layers[0]["config"]["dilation_rate"] = {1, 1};
  layers[0]["config"]["depth_multiplier"] = "two";
  write_text(dir.file("model.json"), doc.dump());
  EXPECT_NE(load_error(dir.path().string())
                .find("layer 0 'dw' (DepthwiseConv2D): field \"depth_multiplier\" must be a "
                      "non-negative integer, found \"two\""),
            std::string::npos)
      << load_error(dir.path().string());
  // A value that parses but does not work out names the file too.
  layers[0]["config"]["depth_multiplier"] = 0;
  write_text(dir.file("model.json"), doc.dump());
  EXPECT_EQ(load_error(dir.path().string()),
            dir.file("model.json") +
                ": layer dw (DepthwiseConv2D): depth_multiplier must be at "
                "least 1");
  layers[0]["config"]["depth_multiplier"] = 2;
  layers[0]["config"]["use_bias"] = "yes";
  write_text(dir.file("model.json"), doc.dump());
  EXPECT_NE(load_error(dir.path().string())
                .find("layer 0 'dw' (DepthwiseConv2D): field \"use_bias\" must be true or false, "
                      "found \"yes\""),
            std::string::npos);
}

TEST(TfjsLoadTest, BatchNormalizationFieldsAndRegularizersAreChecked) {
  test::TempDir dir;
  ModelSpec spec;
  spec.layers = {test::layer("BatchNormalization", "bn"), test::layer("Flatten", "f")};
  Model model(spec);
  save_tfjs(model, dir.path().string());
  ordered_json doc = read_json(dir.file("model.json"));
  ordered_json& c = doc["modelTopology"]["config"]["layers"][0]["config"];
  EXPECT_EQ(c["axis"], -1);
  EXPECT_EQ(c["momentum"], 0.99);
  EXPECT_EQ(c["gamma_initializer"]["class_name"], "Ones");
  Model loaded = load_tfjs(dir.path().string());
  EXPECT_STREQ(loaded->spec().layers[0]->class_name(), "BatchNormalization");
  EXPECT_TRUE(loaded->spec().layers[0]->training_problem.empty());
  // Keras writes the axis as a list.
  c["axis"] = {3};
  c["gamma_regularizer"] = {{"class_name", "L1L2"}, {"config", {{"l1", 0}, {"l2", 0.01}}}};
  write_text(dir.file("model.json"), doc.dump());
  c["beta_regularizer"] = {{"class_name", "L1L2"}, {"config", {{"l2", nullptr}}}};
  write_text(dir.file("model.json"), doc.dump());
  Model keras = load_tfjs(dir.path().string());
  // L1L2 is applied (a missing or null factor is 0.01, as TF.js's fromConfig).
  EXPECT_TRUE(keras->spec().layers[0]->training_problem.empty());
  const auto& bn_weights = keras->weight_specs(0);
  EXPECT_EQ(bn_weights[0].name, "gamma");
  EXPECT_EQ(bn_weights[0].penalty.l1, 0.0);
  EXPECT_EQ(bn_weights[0].penalty.l2, 0.01);
  EXPECT_EQ(bn_weights[1].name, "beta");
  EXPECT_EQ(bn_weights[1].penalty.l1, 0.01);
  EXPECT_EQ(bn_weights[1].penalty.l2, 0.01);
  EXPECT_TRUE(keras->regularized());
  // One channel: gamma 1 (0.01 * 1^2), beta 0.
  EXPECT_NEAR(keras->regularization_loss().item<double>(), 0.01, 1e-9);
  c["beta_regularizer"] = {{"class_name", "L1L2"}, {"config", {{"l1", -1}}}};
  write_text(dir.file("model.json"), doc.dump());
  EXPECT_NE(load_error(dir.path().string())
                .find("field \"beta_regularizer\": l1 must be a number of at least 0, found -1"),
            std::string::npos)
      << load_error(dir.path().string());
  c["beta_regularizer"] = {{"class_name", "L2"}, {"config", {{"l2", 0.01}}}};
  c["gamma_constraint"] = {{"class_name", "NonNeg"}, {"config", ordered_json::object()}};
  write_text(dir.file("model.json"), doc.dump());
  EXPECT_EQ(load_tfjs(dir.path().string())->spec().layers[0]->training_problem,
            "field \"beta_regularizer\" (L2) is not applied in training by mnist-train (only "
            "L1L2 regularizers of its weights are)");
  c.erase("beta_regularizer");
  c.erase("gamma_constraint");
  c["axis"] = 1;
  write_text(dir.file("model.json"), doc.dump());
  EXPECT_NE(load_error(dir.path().string())
                .find("layer bn (BatchNormalization): axis 1 is not the last axis of its input "
                      "[null,28,28,1]"),
            std::string::npos)
      << load_error(dir.path().string());
  c["axis"] = -1;
  c["center"] = "yes";
  write_text(dir.file("model.json"), doc.dump());
  EXPECT_NE(load_error(dir.path().string())
                .find("(BatchNormalization): field \"center\" must be true or false"),
            std::string::npos);
}

TEST(TfjsLoadTest, IncludeOptimizerWeightsAreKeptForTheOptimizer) {
  // As TF.js's model.save(..., {includeOptimizer: true}) writes them: after
  // the model's weights, in the same group, "group": "optimizer", an int32
  // "iter" first; the compile() settings in "trainingConfig".
  test::TempDir dir;
  Model model = saved_model(dir.path().string());
  ordered_json doc = read_json(dir.file("model.json"));
  doc["trainingConfig"] = {
      {"loss", "categorical_crossentropy"},
      {"optimizer_config", {{"class_name", "RMSProp"}, {"config", {{"momentum", 0}}}}}};
  ordered_json& weights = doc["weightsManifest"][0]["weights"];
  const auto entry = [](const char* name, ordered_json shape, const char* dtype) {
    return ordered_json{{"name", name}, {"shape", shape}, {"dtype", dtype}, {"group", "optimizer"}};
  };
  weights.push_back(entry("iter", ordered_json::array(), "int32"));
  weights.push_back(entry("dense_Dense2/bias/rms", {10}, "float32"));
  weights.push_back(entry("dense_Dense2/kernel/rms", {512, 10}, "float32"));
  weights.push_back(entry("no_such_layer/bias/rms", {10}, "float32"));
  write_text(dir.file("model.json"), doc.dump());
  std::vector<char> bytes = read_all(dir.file("weights.bin"));
  const size_t start = bytes.size();
  bytes.resize(start + 4 + 4 * (10 + 5120 + 10), 0);
  const int32_t iter = 7;
  std::memcpy(bytes.data() + start, &iter, 4);
  std::vector<float> kernel_rms(5120);
  for (size_t i = 0; i < kernel_rms.size(); ++i) {
    kernel_rms[i] = static_cast<float>(i);  // TF.js's [in=512, out=10], row-major
  }
  std::memcpy(bytes.data() + start + 44, kernel_rms.data(), 4 * kernel_rms.size());
  test::write_bytes(dir.file("weights.bin"), bytes.data(), bytes.size());
  Model loaded = load_tfjs(dir.path().string());
  EXPECT_TRUE(loaded->weight("dense_Dense2/bias").equal(model->weight("dense_Dense2/bias")));
  const auto& saved = loaded->saved_optimizer;
  EXPECT_EQ(saved.count, 4U);
  EXPECT_EQ(saved.class_name, "RMSProp");
  EXPECT_EQ(saved.config["momentum"], 0);
  ASSERT_EQ(saved.weights.size(), 3U);  // the unknown layer's slot is of no use
  EXPECT_EQ(saved.weights[0].first, "iter");
  EXPECT_EQ(saved.weights[0].second.item<int64_t>(), 7);
  EXPECT_EQ(saved.weights[1].first, "dense_Dense2/bias/rms");
  // In libtorch's layout, as the kernel: [out=10, in=512].
  const at::Tensor k = saved.weights[2].second;
  EXPECT_EQ(k.sizes(), (at::IntArrayRef{10, 512}));
  EXPECT_EQ(k[3][2].item<float>(), 2.0F * 10 + 3);
  // int32 is accepted only there.
  weights[0]["dtype"] = "int32";
  write_text(dir.file("model.json"), doc.dump());
  EXPECT_NE(load_error(dir.path().string()).find("dtype \"int32\" is not supported"),
            std::string::npos);
}

TEST(TfjsLoadTest, BadQuantizationEntriesAreNamed) {
  const auto quantized_error = [](const std::function<void(ordered_json&)>& edit) {
    test::TempDir dir;
    saved_model(dir.path().string());
    quantize_folder(dir.path().string(), WeightStorage::kUint8);
    ordered_json doc = read_json(dir.file("model.json"));
    edit(doc);
    write_text(dir.file("model.json"), doc.dump());
    return load_error(dir.path().string());
  };
  const auto q = [](ordered_json& d) -> ordered_json& {
    return d["weightsManifest"][0]["weights"][2]["quantization"];
  };
  EXPECT_NE(quantized_error([&](ordered_json& d) { q(d)["dtype"] = "int8"; })
                .find("weight \"conv2d_Conv2D2/kernel\": quantization dtype \"int8\" is not "
                      "supported (TF.js reads uint8, uint16 and float16)"),
            std::string::npos);
  EXPECT_NE(quantized_error([&](ordered_json& d) {
              q(d).erase("scale");
            }).find("quantization uint8 needs the numbers \"min\" and \"scale\""),
            std::string::npos);
  EXPECT_NE(quantized_error([&](ordered_json& d) {
              q(d)["min"] = "0";
            }).find("needs the numbers \"min\" and \"scale\""),
            std::string::npos);
  EXPECT_NE(quantized_error([&](ordered_json& d) {
              q(d) = "uint8";
            }).find("\"quantization\" must be an object with a \"dtype\""),
            std::string::npos);
  EXPECT_NE(quantized_error([&](ordered_json& d) {
              q(d)["original_dtype"] = "int32";
            }).find("original_dtype \"int32\" is not supported"),
            std::string::npos);
  // A uint8 entry claimed as uint16: the byte count no longer matches.
  EXPECT_NE(quantized_error([&](ordered_json& d) {
              q(d)["dtype"] = "uint16";
            }).find("the weight files hold 594922 bytes, but the manifest's weights need 604138"),
            std::string::npos);
}

/// Saves a model, lets `edit` change model.json, returns load_tfjs's error.
std::string error_after(const std::function<void(ordered_json&)>& edit) {
  test::TempDir dir;
  saved_model(dir.path().string());
  ordered_json doc = read_json(dir.file("model.json"));
  edit(doc);
  write_text(dir.file("model.json"), doc.dump());
  return load_error(dir.path().string());
}

ordered_json& weight_spec(ordered_json& doc, size_t i) {
  return doc["weightsManifest"][0]["weights"][i];
}
ordered_json& layer_config(ordered_json& doc, size_t i) {
  return doc["modelTopology"]["config"]["layers"][i]["config"];
}

TEST(TfjsLoadTest, BadManifestEntriesNameTheEntry) {
  EXPECT_NE(error_after([](ordered_json& d) {
              weight_spec(d, 3)["name"] = "conv2d_Conv2D2/kernl";
            }).find("weight \"conv2d_Conv2D2/kernl\": the model has no such weight"),
            std::string::npos);
  EXPECT_NE(error_after([](ordered_json& d) {
              weight_spec(d, 0)["shape"] = {3, 3, 32, 1};
            }).find("shape [3,3,32,1] does not match the layer's [3,3,1,32]"),
            std::string::npos);
  EXPECT_NE(error_after([](ordered_json& d) {
              weight_spec(d, 1)["dtype"] = "int32";
            }).find("dtype \"int32\" is not supported"),
            std::string::npos);
  EXPECT_NE(error_after([](ordered_json& d) {
              d["weightsManifest"][0]["weights"].erase(11);
            }).find("the weight files hold 2379688 bytes, but the manifest's weights need 2379648"),
            std::string::npos);
  EXPECT_NE(error_after([](ordered_json& d) {
              d["weightsManifest"][0]["paths"] = {"../weights.bin"};
            }).find("leaves the model folder"),
            std::string::npos);
  EXPECT_NE(error_after([](ordered_json& d) {
              d["weightsManifest"][0]["paths"] = {"/etc/passwd"};
            }).find("absolute"),
            std::string::npos);
}

TEST(TfjsLoadTest, MissingWeightIsNamed) {
  // Drop the last weight and its bytes: the model's dense_Dense2/bias is missing.
  test::TempDir dir;
  saved_model(dir.path().string());
  ordered_json doc = read_json(dir.file("model.json"));
  doc["weightsManifest"][0]["weights"].erase(11);
  write_text(dir.file("model.json"), doc.dump());
  std::vector<char> bytes = read_all(dir.file("weights.bin"));
  bytes.resize(bytes.size() - 40);
  test::write_bytes(dir.file("weights.bin"), std::vector<uint8_t>(bytes.begin(), bytes.end()));
  EXPECT_NE(load_error(dir.path().string())
                .find("weight \"dense_Dense2/bias\" of the model is missing from the manifest"),
            std::string::npos);
}

TEST(TfjsLoadTest, BadTopologiesNameTheLayerAndField) {
  EXPECT_NE(
      error_after([](ordered_json& d) {
        layer_config(d, 0)["data_format"] = "channels_first";
      }).find("layer 0 'conv2d_Conv2D1' (Conv2D): field \"data_format\" is \"channels_first\""),
      std::string::npos);
  EXPECT_NE(error_after([](ordered_json& d) {
              d["modelTopology"]["config"]["layers"][7]["class_name"] = "Conv3DTranspose";
            })
                .find("layer 7 'dropout_Dropout1' (Conv3DTranspose): layer class "
                      "Conv3DTranspose is not supported"),
            std::string::npos);
  EXPECT_NE(error_after([](ordered_json& d) {
              d["modelTopology"]["class_name"] = "Graph";
            }).find("class \"Graph\" is not supported (Sequential models load, and functional"),
            std::string::npos);
  EXPECT_NE(
      error_after([](ordered_json& d) {
        layer_config(d, 1)["dilation_rate"] = {2, 0};
      })
          .find("layer 1 'conv2d_Conv2D2' (Conv2D): field \"dilation_rate\" must hold positive "
                "integers, found [2,0]"),
      std::string::npos);
  // Any image or flat input loads; sizes that are no sizes, or too large to
  // train, are refused before any tensor is made.
  for (const auto& [shape, why] : std::vector<std::pair<ordered_json, std::string>>{
           {{nullptr, 0, 28, 1}, "(each size must be a whole number from 1 to 65536)"},
           {{nullptr, 1000000, 1000000, 1}, "(each size must be a whole number from 1 to 65536)"},
           {{nullptr, 4096, 4096, 3}, "(more than 16777216 values per example"},
           {{nullptr, 28, 28}, "(supported: images [null,h,w,c] and flat inputs [null,n])"},
           {{nullptr}, "(expected [null,h,w,c] or [null,n])"}}) {
    EXPECT_NE(error_after([&shape = shape](ordered_json& d) {
                layer_config(d, 0)["batch_input_shape"] = shape;
              })
                  .find("layer 0 'conv2d_Conv2D1' (Conv2D): field \"batch_input_shape\" is " +
                        shape.dump() + " " + why),
              std::string::npos)
        << shape.dump();
  }
  EXPECT_NE(error_after([](ordered_json& d) {
              layer_config(d, 8)["activation"] = "exponential";
            }).find("field \"activation\" is \"exponential\""),
            std::string::npos);
  EXPECT_NE(
      error_after([](ordered_json& d) { d["format"] = "graph-model"; }).find("tf.loadGraphModel"),
      std::string::npos);
}

TEST(TfjsLoadTest, AnyImageOrFlatInputLoadsAndIsSavedAgain) {
  for (const Shape& input : {Shape{32, 32, 3}, Shape{784}}) {
    test::TempDir dir;
    ModelSpec spec;
    spec.input_shape = input;
    if (input.size() == 3) {
      spec.layers = {test::layer("Conv2D", "c", {{"filters", 4}, {"kernel_size", 3}}),
                     test::layer("Flatten", "f")};
    }
    spec.layers.push_back(test::layer("Dense", "d", {{"units", 10}, {"activation", "softmax"}}));
    Model model(spec);
    save_tfjs(model, dir.path().string());
    ordered_json doc = read_json(dir.file("model.json"));
    ordered_json expected = ordered_json::array({nullptr});
    for (const int64_t d : input) {
      expected.push_back(d);
    }
    ordered_json& first = doc["modelTopology"]["config"]["layers"][0]["config"];
    EXPECT_EQ(first["batch_input_shape"], expected);
    EXPECT_EQ(load_tfjs(dir.path().string())->spec().input_shape, input);
    // Keras 3 writes batch_shape.
    first["batch_shape"] = first["batch_input_shape"];
    first.erase("batch_input_shape");
    write_text(dir.file("model.json"), doc.dump());
    Model keras = load_tfjs(dir.path().string());
    EXPECT_EQ(keras->spec().input_shape, input);
    EXPECT_NE(summary_text(keras).find("[[null," + std::to_string(input[0])), std::string::npos);
  }
}

TEST(TfjsLoadTest, BadFilesAreClearErrors) {
  test::TempDir dir;
  saved_model(dir.path().string());
  write_text(dir.file("model.json"), "{\"modelTopology\": [1, 2");
  EXPECT_NE(load_error(dir.path().string()).find("model.json: not valid JSON"), std::string::npos);

  test::TempDir short_dir;
  saved_model(short_dir.path().string());
  std::vector<char> bytes = read_all(short_dir.file("weights.bin"));
  test::write_bytes(short_dir.file("weights.bin"),
                    std::vector<uint8_t>(bytes.begin(), bytes.begin() + 100));
  EXPECT_NE(load_error(short_dir.path().string()).find("the weight files hold 100 bytes"),
            std::string::npos);

  std::filesystem::remove(short_dir.file("weights.bin"));
  EXPECT_NE(load_error(short_dir.path().string()).find("weights.bin: cannot read the weight file"),
            std::string::npos);
  EXPECT_NE(load_error("/nonexistent/model").find("cannot open the model"), std::string::npos);
}

TEST(TfjsLoadTest, DeeplyNestedOrHugeJsonIsRefusedBeforeParsing) {
  test::TempDir dir;
  const std::string deep(200000, '[');
  write_text(dir.file("model.json"), "{\"modelTopology\":" + deep + std::string(200000, ']') + "}");
  EXPECT_NE(load_error(dir.path().string()).find("JSON nested deeper than 64 levels"),
            std::string::npos);
  // Brackets inside strings do not count.
  write_text(dir.file("x.json"), "{\"a\":\"" + deep + "\\\"\"}");
  EXPECT_NO_THROW(read_json_file(dir.file("x.json")));
  // A weight claiming 10^12 elements is refused before anything is read.
  test::TempDir big;
  saved_model(big.path().string());
  ordered_json doc = read_json(big.file("model.json"));
  weight_spec(doc, 8)["shape"] = {1000000, 1000000};
  write_text(big.file("model.json"), doc.dump());
  EXPECT_NE(load_error(big.path().string()).find("is too large"), std::string::npos);
}

TEST(TfjsLoadTest, NonFiniteWeightsAreRefused) {
  test::TempDir dir;
  saved_model(dir.path().string());
  std::vector<char> bytes = read_all(dir.file("weights.bin"));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(bytes.data() + 1152 + 8, &nan, 4);  // conv2d_Conv2D1/bias[2]
  test::write_bytes(dir.file("weights.bin"), std::vector<uint8_t>(bytes.begin(), bytes.end()));
  EXPECT_NE(load_error(dir.path().string())
                .find("weight \"conv2d_Conv2D1/bias\": holds NaN or infinite values"),
            std::string::npos);
}

/// One rule for manifest paths, shared with serve: "./" prefixes (TF.js's
/// browser saver) are normalised; anything that could leave the folder is
/// refused with the reason.
TEST(TfjsLoadTest, WeightPathRule) {
  EXPECT_EQ(check_weight_path("weights.bin").path, "weights.bin");
  EXPECT_EQ(check_weight_path("./weights.bin").path, "weights.bin");
  EXPECT_EQ(check_weight_path("./shards/group1-shard1of2.bin").path, "shards/group1-shard1of2.bin");
  EXPECT_EQ(check_weight_path("/etc/passwd").problem, "is absolute");
  EXPECT_EQ(check_weight_path("../weights.bin").problem, "leaves the model folder");
  EXPECT_EQ(check_weight_path("./../weights.bin").problem, "leaves the model folder");
  EXPECT_EQ(check_weight_path("a/../../b").problem, "leaves the model folder");
  EXPECT_EQ(check_weight_path("a//b").problem, "has an empty segment");
  EXPECT_EQ(check_weight_path("").problem, "is empty");
  EXPECT_EQ(check_weight_path("./").problem, "names no file");
  EXPECT_FALSE(check_weight_path("a/./b").problem.empty());
  EXPECT_FALSE(check_weight_path("a\\b").problem.empty());
  EXPECT_FALSE(check_weight_path(std::string("a\nb")).problem.empty());
  for (const char* refused : {"/etc/passwd", "../w.bin", "a//b", "", "a/./b"}) {
    EXPECT_TRUE(check_weight_path(refused).path.empty()) << refused;
  }
}

/// A model whose manifest names "./weights.bin", as model.save('downloads://')
/// writes it, loads, and equals the model saved with "weights.bin".
TEST(TfjsLoadTest, DotSlashWeightPathsLoad) {
  test::TempDir dir;
  Model saved = saved_model(dir.path().string());
  ordered_json doc = read_json(dir.file("model.json"));
  doc["weightsManifest"][0]["paths"] = {"./weights.bin"};
  write_text(dir.file("model.json"), doc.dump());
  Model loaded = load_tfjs(dir.path().string());
  EXPECT_TRUE(loaded->weight("dense_Dense1/kernel").equal(saved->weight("dense_Dense1/kernel")));
  EXPECT_EQ(manifest_weight_files(dir.path().string()), std::vector<std::string>{"weights.bin"});
}

/// `doc`, a model.json mnist-train wrote, in Keras 3's dialect as
/// tensorflowjs_converter 4.22 writes a Keras 3 Sequential model (see
/// docs/formats.md): an InputLayer with "batch_shape", DTypePolicy dtypes, "module" and
/// "registered_name" on the layers and their initializers, "build_config",
/// the model's own "trainable", "dtype" and "build_input_shape", and weight
/// names prefixed by the model's name.
ordered_json keras3_dialect(const ordered_json& doc) {
  const ordered_json policy = {{"module", "keras"},
                               {"class_name", "DTypePolicy"},
                               {"config", {{"name", "float32"}}},
                               {"registered_name", nullptr}};
  const ordered_json& config = doc["modelTopology"]["config"];
  const std::string model = config["name"].get<std::string>();
  const ordered_json batch_shape = config["layers"][0]["config"]["batch_input_shape"];
  ordered_json layers = ordered_json::array();
  layers.push_back({{"class_name", "InputLayer"},
                    {"config",
                     {{"batch_shape", batch_shape},
                      {"dtype", "float32"},
                      {"sparse", false},
                      {"ragged", false},
                      {"name", "input_layer"},
                      {"optional", false}}}});
  for (ordered_json layer : config["layers"]) {
    ordered_json& c = layer["config"];
    c.erase("batch_input_shape");
    c["dtype"] = policy;
    for (auto& field : c.items()) {
      if (field.value().is_object() && field.value().contains("class_name")) {
        field.value() = {{"module", "keras.initializers"},
                         {"class_name", field.value()["class_name"]},
                         {"config", field.value()["config"]},
                         {"registered_name", nullptr}};
      }
    }
    layers.push_back({{"module", "keras.layers"},
                      {"class_name", layer["class_name"]},
                      {"config", c},
                      {"registered_name", nullptr},
                      {"build_config", {{"input_shape", batch_shape}}}});
  }
  ordered_json out = doc;
  out["modelTopology"] = {{"keras_version", "3.10.0"},
                          {"backend", "tensorflow"},
                          {"model_config",
                           {{"module", "keras"},
                            {"class_name", "Sequential"},
                            {"config",
                             {{"name", model},
                              {"trainable", true},
                              {"dtype", policy},
                              {"layers", layers},
                              {"build_input_shape", batch_shape}}},
                            {"registered_name", nullptr},
                            {"build_config", {{"input_shape", batch_shape}}}}}};
  for (auto& weight : out["weightsManifest"][0]["weights"]) {
    weight["name"] = model + "/" + weight["name"].get<std::string>();
  }
  out["generatedBy"] = "keras v3.10.0";
  out["convertedBy"] = "TensorFlow.js Converter v4.22.0";
  return out;
}

/// A model.json in Keras 3's dialect loads, predicts as the model it came
/// from, and is saved again in TF.js's own keys and weight names.
TEST(TfjsLoadTest, Keras3DialectLoadsAndIsSavedAsTfjsWritesIt) {
  test::TempDir dir;
  Model saved = saved_model(dir.path().string());
  const ordered_json original = read_json(dir.file("model.json"));
  write_text(dir.file("model.json"), keras3_dialect(original).dump());
  Model loaded = load_tfjs(dir.path().string());
  for (const auto& [name, tensor] : saved->tfjs_weights()) {
    EXPECT_TRUE(loaded->weight(name).equal(tensor)) << name;
  }
  const at::Tensor x = at::rand({4, 1, 28, 28});
  EXPECT_TRUE(predict_proba(loaded, x, 2).equal(predict_proba(saved, x, 2)));
  EXPECT_EQ(summary_text(loaded), summary_text(saved));

  test::TempDir again;
  save_tfjs(loaded, again.path().string());
  EXPECT_EQ(read_all(again.file("weights.bin")), read_all(dir.file("weights.bin")));
  const ordered_json resaved = read_json(again.file("model.json"));
  EXPECT_EQ(resaved["weightsManifest"], original["weightsManifest"]);
  const std::string text = resaved.dump();
  for (const char* keras3 :
       {"\"module\"", "registered_name", "DTypePolicy", "batch_shape", "build_config"}) {
    EXPECT_EQ(text.find(keras3), std::string::npos) << keras3;
  }
  const ordered_json& layers = resaved["modelTopology"]["config"]["layers"];
  ASSERT_EQ(layers.size(), original["modelTopology"]["config"]["layers"].size());
  EXPECT_EQ(layers[0]["config"]["batch_input_shape"],
            original["modelTopology"]["config"]["layers"][0]["config"]["batch_input_shape"]);
  for (const auto& layer : layers) {
    EXPECT_EQ(layer["config"]["dtype"], "float32") << layer.dump();
  }
}

/// Only a float32 DTypePolicy loads; a prefix other than the model's name,
/// or a weight named twice (with and without it), is an error naming it.
TEST(TfjsLoadTest, Keras3DialectErrorsNameTheLayerFieldAndWeight) {
  const auto keras3_error = [](const std::function<void(ordered_json&)>& edit) {
    test::TempDir dir;
    saved_model(dir.path().string());
    ordered_json doc = keras3_dialect(read_json(dir.file("model.json")));
    edit(doc);
    write_text(dir.file("model.json"), doc.dump());
    return load_error(dir.path().string());
  };
  const auto layers = [](ordered_json& d) -> ordered_json& {
    return d["modelTopology"]["model_config"]["config"]["layers"];
  };
  const std::string mixed = keras3_error([&](ordered_json& d) {
    layers(d)[2]["config"]["dtype"]["config"]["name"] = "mixed_float16";
  });
  EXPECT_NE(mixed.find("model.json: layer 2 'conv2d_Conv2D2' (Conv2D): field \"dtype\" is "),
            std::string::npos)
      << mixed;
  EXPECT_NE(mixed.find("mixed_float16"), std::string::npos) << mixed;
  EXPECT_NE(keras3_error([](ordered_json& d) {
              d["modelTopology"]["model_config"]["config"]["dtype"]["config"]["name"] = "bfloat16";
            }).find("model.json: modelTopology: field \"dtype\" is "),
            std::string::npos);
  EXPECT_NE(keras3_error([](ordered_json& d) {
              weight_spec(d, 0)["name"] = "sequential_9/conv2d_Conv2D1/kernel";
            }).find("weight \"sequential_9/conv2d_Conv2D1/kernel\": the model has no such weight"),
            std::string::npos);
  const std::string twice =
      keras3_error([](ordered_json& d) { weight_spec(d, 1)["name"] = "conv2d_Conv2D1/kernel"; });
  EXPECT_NE(twice.find("appears twice in the manifest (as \"conv2d_Conv2D1/kernel\")"),
            std::string::npos)
      << twice;
}

}  // namespace
}  // namespace mnist
