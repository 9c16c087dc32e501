// The ONNX export: what its bytes say when ONNX's own classes read them back
// (opset, the input and output TF.js names and shapes, the weights in
// ONNX's layouts, the layout Transposes, TF's "same" padding, the class
// names), refusals naming the layer, and the file written whole. That the
// exported models predict what TF.js predicts is tests/onnx_test.sh's
// (ONNX Runtime against real TF.js).
#define ONNX_ML 1
#define ONNX_NAMESPACE onnx
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
#include "mnist/model.hpp"
#include "mnist/onnx_export.hpp"
#include "test_util.hpp"

using nlohmann::ordered_json;

namespace mnist {
namespace {

onnx::ModelProto parse(const std::string& bytes) {
  onnx::ModelProto proto;
  EXPECT_TRUE(proto.ParseFromString(bytes));
  return proto;
}

/// A value's shape: dim_param "batch" as -1.
std::vector<int64_t> dims_of(const onnx::ValueInfoProto& info) {
  std::vector<int64_t> dims;
  for (const auto& d : info.type().tensor_type().shape().dim()) {
    dims.push_back(d.has_dim_param() ? (d.dim_param() == "batch" ? -1 : -2) : d.dim_value());
  }
  return dims;
}

std::map<std::string, int> op_counts(const onnx::GraphProto& graph) {
  std::map<std::string, int> counts;
  for (const auto& n : graph.node()) {
    ++counts[n.op_type()];
  }
  return counts;
}

const onnx::NodeProto* first_node(const onnx::GraphProto& graph, const std::string& op) {
  for (const auto& n : graph.node()) {
    if (n.op_type() == op) {
      return &n;
    }
  }
  return nullptr;
}

std::vector<int64_t> ints_attribute(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) {
      return {a.ints().begin(), a.ints().end()};
    }
  }
  return {};
}

TEST(OnnxExportTest, MnistNodeKeepsTfjsNamesShapesAndWeights) {
  torch::manual_seed(1);
  Model model(mnist_node_spec());
  const onnx::ModelProto proto = parse(onnx_model_bytes(model, "mnist-node"));
  ASSERT_EQ(proto.opset_import_size(), 1);
  EXPECT_EQ(proto.opset_import(0).domain(), "");
  EXPECT_EQ(proto.opset_import(0).version(), kOnnxOpset);
  EXPECT_EQ(kOnnxOpset, 13);
  EXPECT_EQ(proto.producer_name(), "mnist-train");
  const onnx::GraphProto& g = proto.graph();
  // tfjs-layers' Sequential.add names the input "<first layer>_input".
  ASSERT_EQ(g.input_size(), 1);
  EXPECT_EQ(g.input(0).name(), "conv2d_Conv2D1_input");
  EXPECT_EQ(dims_of(g.input(0)), (std::vector<int64_t>{-1, 28, 28, 1}));
  ASSERT_EQ(g.output_size(), 1);
  EXPECT_EQ(g.output(0).name(), "dense_Dense2");
  EXPECT_EQ(dims_of(g.output(0)), (std::vector<int64_t>{-1, 10}));
  EXPECT_EQ(onnx_signature(model).input_name, "conv2d_Conv2D1_input");

  // One Transpose to NCHW after the input, one back before Flatten; no
  // Dropout at inference.
  const std::map<std::string, int> ops = op_counts(g);
  EXPECT_EQ(ops, (std::map<std::string, int>{{"Transpose", 2},
                                             {"Conv", 4},
                                             {"Relu", 5},
                                             {"MaxPool", 2},
                                             {"Flatten", 1},
                                             {"Gemm", 2},
                                             {"Softmax", 1},
                                             {"Identity", 1}}));
  const onnx::NodeProto& in = g.node(0);
  EXPECT_EQ(in.op_type(), "Transpose");
  EXPECT_EQ(in.input(0), "conv2d_Conv2D1_input");
  EXPECT_EQ(ints_attribute(in, "perm"), (std::vector<int64_t>{0, 3, 1, 2}));
  const onnx::NodeProto* flatten = first_node(g, "Flatten");
  ASSERT_NE(flatten, nullptr);
  const onnx::NodeProto* back = nullptr;
  for (const auto& n : g.node()) {
    if (n.output(0) == flatten->input(0)) {
      back = &n;
    }
  }
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->op_type(), "Transpose");
  EXPECT_EQ(ints_attribute(*back, "perm"), (std::vector<int64_t>{0, 2, 3, 1}));

  // Every weight an initializer of its TF.js name, in ONNX's layouts: conv
  // kernels OIHW, Dense kernels [out,in] (Gemm transB), float32 little-endian.
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : g.initializer()) {
    inits[t.name()] = &t;
  }
  EXPECT_EQ(inits.size(), 12u);
  for (const auto& [name, tensor] : model->tfjs_weights()) {
    ASSERT_EQ(inits.count(name), 1u) << name;
    const onnx::TensorProto& t = *inits[name];
    EXPECT_EQ(t.data_type(), onnx::TensorProto::FLOAT) << name;
    EXPECT_EQ(std::vector<int64_t>(t.dims().begin(), t.dims().end()), tensor.sizes().vec()) << name;
    const at::Tensor values = tensor.contiguous();
    ASSERT_EQ(t.raw_data().size(), static_cast<size_t>(values.numel()) * 4) << name;
    EXPECT_EQ(std::memcmp(t.raw_data().data(), values.data_ptr<float>(), t.raw_data().size()), 0)
        << name;
  }
  const onnx::NodeProto* gemm = first_node(g, "Gemm");
  ASSERT_NE(gemm, nullptr);
  EXPECT_EQ(gemm->input(1), "dense_Dense1/kernel");
}

TEST(OnnxExportTest, SamePaddingIsExplicitWithTheExtraOnTheBottomAndRight) {
  ModelSpec spec;
  spec.input_shape = {6, 6, 1};
  spec.layers = {
      test::layer("Conv2D", "c", {{"filters", 2}, {"kernel_size", 2}, {"padding", "same"}}),
      test::layer("MaxPooling2D", "p", {{"pool_size", 3}, {"strides", 2}, {"padding", "same"}}),
      test::layer("AveragePooling2D", "a", {{"pool_size", 2}, {"padding", "same"}}),
      test::layer("GlobalAveragePooling2D", "g"),
      test::layer("Dense", "d", {{"units", 3}, {"activation", "softmax"}})};
  torch::manual_seed(2);
  Model model(spec);
  const onnx::GraphProto g = parse(onnx_model_bytes(model, "same")).graph();
  // TF: a 2-wide window on 6 at stride 1 pads 1 in all, after; pool 3 at
  // stride 2 on 6 gives 3, 1 row of padding, after; pool 2 on 3 gives 2, 1.
  const onnx::NodeProto* conv = first_node(g, "Conv");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(ints_attribute(*conv, "pads"), (std::vector<int64_t>{0, 0, 1, 1}));
  const onnx::NodeProto* max = first_node(g, "MaxPool");
  ASSERT_NE(max, nullptr);
  EXPECT_EQ(ints_attribute(*max, "pads"), (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(ints_attribute(*max, "strides"), (std::vector<int64_t>{2, 2}));
  const onnx::NodeProto* avg = first_node(g, "AveragePool");
  ASSERT_NE(avg, nullptr);
  EXPECT_EQ(ints_attribute(*avg, "pads"), (std::vector<int64_t>{0, 0, 1, 1}));
  bool count_include_pad_off = false;
  for (const auto& a : avg->attribute()) {
    count_include_pad_off |= a.name() == "count_include_pad" && a.i() == 0;
  }
  EXPECT_TRUE(count_include_pad_off) << "TF averages over the cells inside the image only";
  // Global pooling reduces the NCHW rows and columns: no Transpose back.
  EXPECT_EQ(op_counts(g)["Transpose"], 1);
  EXPECT_EQ(ints_attribute(*first_node(g, "ReduceMean"), "axes"), (std::vector<int64_t>{2, 3}));
}

TEST(OnnxExportTest, FunctionalModelKeepsItsInputLayersNameAndCallsASharedLayerTwice) {
  ModelSpec spec;
  spec.name = "model1";
  spec.layers = {
      test::layer("InputLayer", "image", {{"batch_input_shape", {nullptr, 8, 8, 1}}}),
      test::layer("Conv2D", "c", {{"filters", 4}, {"kernel_size", 3}, {"padding", "same"}}),
      test::layer("Activation", "act", {{"activation", "tanh"}}),
      test::layer("Add", "add"),
      test::layer("Flatten", "f"),
      test::layer("Dense", "head", {{"units", 10}, {"activation", "softmax"}})};
  Graph graph;
  // image -> c -> act (call 0) -> act (call 1); add(act 0, act 1) -> f -> head
  graph.nodes = {{0, {}}, {1, {0}}, {2, {1}}, {2, {2}}, {3, {2, 3}}, {4, {4}}, {5, {5}}};
  graph.output = 6;
  spec.graph = graph;
  torch::manual_seed(3);
  Model model(spec);
  const onnx::ModelProto proto = parse(onnx_model_bytes(model, "functional"));
  const onnx::GraphProto& g = proto.graph();
  EXPECT_EQ(g.input(0).name(), "image");
  EXPECT_EQ(g.output(0).name(), "head");
  EXPECT_EQ(g.name(), "model1");
  std::map<std::string, int> ops = op_counts(g);
  EXPECT_EQ(ops["Tanh"], 2);
  EXPECT_EQ(ops["Add"], 1);
  EXPECT_EQ(ops["Transpose"], 2);
  EXPECT_EQ(g.initializer_size(), 4);  // c's and head's kernels and biases, once each
}

TEST(OnnxExportTest, AFlatInputModelTakesItsValuesWithoutATranspose) {
  ModelSpec spec;
  spec.input_shape = {784};
  spec.layers = {test::layer("Dense", "hidden", {{"units", 16}, {"activation", "relu6"}}),
                 test::layer("Dropout", "drop", {{"rate", 0.5}}),
                 test::layer("Dense", "out", {{"units", 10}, {"activation", "softmax"}})};
  torch::manual_seed(7);
  Model model(spec);
  const onnx::GraphProto g = parse(onnx_model_bytes(model, "flat")).graph();
  EXPECT_EQ(g.input(0).name(), "hidden_input");
  EXPECT_EQ(dims_of(g.input(0)), (std::vector<int64_t>{-1, 784}));
  EXPECT_EQ(op_counts(g), (std::map<std::string, int>{
                              {"Gemm", 2}, {"Clip", 1}, {"Softmax", 1}, {"Identity", 1}}));
}

TEST(OnnxExportTest, ClassNamesAndMetadataAreInTheModelsMetadata) {
  torch::manual_seed(4);
  Model model(mnist_node_spec(true, 3));
  model->set_metadata({{"dataset", "pets"}, {"classNames", {"cat", "dog", "fish"}}});
  const onnx::ModelProto proto = parse(onnx_model_bytes(model, "pets"));
  std::map<std::string, std::string> props;
  for (const auto& p : proto.metadata_props()) {
    props[p.key()] = p.value();
  }
  EXPECT_EQ(props["classNames"], R"(["cat","dog","fish"])");
  EXPECT_EQ(ordered_json::parse(props["userDefinedMetadata"])["dataset"], "pets");
  const ordered_json tm = ordered_json::parse(props["metadata.json"]);
  EXPECT_EQ(tm["labels"], ordered_json({"cat", "dog", "fish"}));
  EXPECT_EQ(tm["imageSize"], 28);
  EXPECT_FALSE(tm.contains("timeStamp"));
  EXPECT_EQ(props["inputLayout"], "NHWC");
  // No time in the file: the same model exports to the same bytes.
  EXPECT_EQ(onnx_model_bytes(model, "pets"), onnx_model_bytes(model, "pets"));

  // mnist-node's own model names no classes.
  Model plain(mnist_node_spec());
  const onnx::ModelProto plain_proto = parse(onnx_model_bytes(plain, "plain"));
  for (const auto& p : plain_proto.metadata_props()) {
    EXPECT_NE(p.key(), "classNames");
  }
}

TEST(OnnxExportTest, ASequentialNestedTwiceIsRefusedNamingTheLayers) {
  LayerPtr inner = make_nested_sequential({test::layer("Dense", "d", {{"units", 2}})}, {});
  inner->name = "inner";
  LayerPtr outer = make_nested_sequential({inner}, {});
  outer->name = "outer";
  ModelSpec spec;
  spec.input_shape = {4};
  spec.layers = {outer, test::layer("Activation", "s", {{"activation", "softmax"}})};
  Model model(spec);
  test::TempDir dir;
  const std::string path = dir.file("deep.onnx");
  try {
    save_onnx(model, "deep", path);
    ADD_FAILURE() << "a Sequential nested in a nested Sequential was exported";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("deep: layer 'outer' (Sequential): its layer 'inner'", 0),
              0u)
        << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "nothing is written for a refused model";
}

TEST(OnnxExportTest, SaveWritesTheWholeFileAndRefusesAMissingFolderOrAFolder) {
  test::TempDir dir;
  torch::manual_seed(5);
  Model model(mnist_node_spec());
  const std::string path = dir.file("model.onnx");
  const uint64_t bytes = save_onnx(model, "mnist-node", path);
  EXPECT_EQ(std::filesystem::file_size(path), bytes);
  std::ifstream in(path, std::ios::binary);
  std::stringstream read;
  read << in.rdbuf();
  EXPECT_EQ(parse(read.str()).graph().output(0).name(), "dense_Dense2");
  // Nothing else left beside it (no temporary file).
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);

  const std::string missing = dir.file("no/such/folder/model.onnx");
  try {
    save_onnx(model, "mnist-node", missing);
    ADD_FAILURE() << "wrote into a missing folder";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(missing + ": ", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos) << e.what();
  }
  try {
    save_onnx(model, "mnist-node", dir.path().string());
    ADD_FAILURE() << "wrote over a folder";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("is a folder"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mnist
