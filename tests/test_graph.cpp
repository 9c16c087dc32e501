// Functional models (class "Model"): the graph read from model.json in the
// forms TF.js, Keras 2 and Keras 3 write, computed node after node, saved as
// TF.js writes it; every malformed graph refused, naming the layer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
#include "mnist/model.hpp"
#include "mnist/tfjs_io.hpp"
#include "test_util.hpp"

using nlohmann::ordered_json;

namespace mnist {
namespace {

/// in -> c (conv 4, same) -> act (tanh) -> c2 (conv 4, same) -> act again
/// -> f (flatten) -> d (dense 10 softmax): one layer called twice.
ModelSpec shared_activation_spec() {
  ModelSpec spec;
  spec.name = "model1";
  spec.layers = {
      test::layer("InputLayer", "in", {{"batch_input_shape", {nullptr, 28, 28, 1}}}),
      test::layer("Conv2D", "c", {{"filters", 4}, {"kernel_size", 3}, {"padding", "same"}}),
      test::layer("Activation", "act", {{"activation", "tanh"}}),
      test::layer("Conv2D", "c2", {{"filters", 4}, {"kernel_size", 3}, {"padding", "same"}}),
      test::layer("Flatten", "f"),
      test::layer("Dense", "d", {{"units", 10}, {"activation", "softmax"}})};
  Graph graph;
  graph.nodes = {{0, {}}, {1, {0}}, {2, {1}}, {3, {2}}, {2, {3}}, {4, {4}}, {5, {5}}};
  graph.output = 6;
  spec.graph = graph;
  return spec;
}

/// The same computation as a Sequential model (two Activation layers).
ModelSpec sequential_twin() {
  ModelSpec spec;
  spec.layers = {
      test::layer("Conv2D", "c", {{"filters", 4}, {"kernel_size", 3}, {"padding", "same"}}),
      test::layer("Activation", "act", {{"activation", "tanh"}}),
      test::layer("Conv2D", "c2", {{"filters", 4}, {"kernel_size", 3}, {"padding", "same"}}),
      test::layer("Activation", "act2", {{"activation", "tanh"}}),
      test::layer("Flatten", "f"),
      test::layer("Dense", "d", {{"units", 10}, {"activation", "softmax"}})};
  return spec;
}

ordered_json read_json(const std::string& path) {
  std::ifstream in(path);
  return ordered_json::parse(in);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string load_error(const std::string& dir) {
  try {
    load_tfjs(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "(loaded)";
}

/// Saves the shared-activation model, lets `edit` change its topology's
/// config, returns load_tfjs's error.
std::string graph_error(const std::function<void(ordered_json&)>& edit) {
  test::TempDir dir;
  torch::manual_seed(1);
  save_tfjs(Model(shared_activation_spec()), dir.path().string());
  ordered_json doc = read_json(dir.file("model.json"));
  edit(doc["modelTopology"]["config"]);
  write_text(dir.file("model.json"), doc.dump());
  return load_error(dir.path().string());
}

ordered_json& entry(ordered_json& config, size_t i) { return config["layers"][i]; }

TEST(GraphTest, FunctionalModelComputesAsItsSequentialTwin) {
  torch::manual_seed(3);
  Model graph(shared_activation_spec());
  Model chain(sequential_twin());
  torch::NoGradGuard no_grad;
  for (const char* name : {"c/kernel", "c/bias", "c2/kernel", "c2/bias", "d/kernel", "d/bias"}) {
    chain->weight(name).copy_(graph->weight(name));
  }
  graph->eval();
  chain->eval();
  const at::Tensor x = at::rand({5, 1, 28, 28});
  EXPECT_TRUE(at::allclose(graph->predict(x), chain->predict(x), 0, 0));
  EXPECT_TRUE(at::allclose(graph->forward(x), chain->forward(x), 0, 0));
  EXPECT_TRUE(graph->ends_in_softmax());
  EXPECT_EQ(model_outputs(graph), 10);
  EXPECT_EQ(count_params(graph), count_params(chain));
  EXPECT_FALSE(graph->sequential_like());  // act is called twice
}

TEST(GraphTest, SavedAsTfjsWritesItAndLoadedAgain) {
  test::TempDir dir;
  torch::manual_seed(4);
  Model model(shared_activation_spec());
  save_tfjs(model, dir.path().string());
  const ordered_json doc = read_json(dir.file("model.json"));
  const ordered_json& top = doc["modelTopology"];
  EXPECT_EQ(top["class_name"], "Model");
  const ordered_json& config = top["config"];
  EXPECT_EQ(config["name"], "model1");
  EXPECT_EQ(config["input_layers"], ordered_json::parse(R"([["in",0,0]])"));
  EXPECT_EQ(config["output_layers"], ordered_json::parse(R"([["d",0,0]])"));
  const ordered_json& act = config["layers"][2];
  EXPECT_EQ(act["name"], "act");
  EXPECT_EQ(act["class_name"], "Activation");
  EXPECT_EQ(act["inbound_nodes"], ordered_json::parse(R"([[["c",0,0,{}]],[["c2",0,0,{}]]])"));
  EXPECT_EQ(config["layers"][4]["inbound_nodes"], ordered_json::parse(R"([[["act",1,0,{}]]])"));
  EXPECT_EQ(config["layers"][0]["inbound_nodes"], ordered_json::array());
  EXPECT_EQ(config["layers"][0]["config"],
            ordered_json::parse(R"({"batch_input_shape":[null,28,28,1],"dtype":"float32",)"
                                R"("sparse":false,"name":"in"})"));
  // Keys in TF.js's order.
  std::vector<std::string> keys;
  for (const auto& [key, value] : act.items()) {
    keys.push_back(key);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"name", "class_name", "config", "inbound_nodes"}));

  Model loaded = load_tfjs(dir.path().string());
  ASSERT_TRUE(loaded->spec().graph.has_value());
  EXPECT_EQ(loaded->spec().input_shape, (Shape{28, 28, 1}));
  model->eval();
  loaded->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::rand({3, 1, 28, 28});
  EXPECT_TRUE(at::equal(model->predict(x), loaded->predict(x)));
  EXPECT_EQ(model_json(loaded)["modelTopology"], top);
  // TF.js's summary: 115 columns and the inputs each layer receives.
  const std::string summary = summary_text(loaded);
  EXPECT_NE(summary.find("Receives inputs"), std::string::npos);
  EXPECT_NE(summary.find("act (Activation)           [[null,28,28,4]],[[null,28, [null,28,28,4]"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("c2[0][0]"), std::string::npos);
  EXPECT_NE(summary.find("act[1][0]"), std::string::npos);
}

TEST(GraphTest, Keras3AndKeras2FormsLoad) {
  test::TempDir dir;
  torch::manual_seed(5);
  Model model(shared_activation_spec());
  save_tfjs(model, dir.path().string());
  ordered_json doc = read_json(dir.file("model.json"));
  // Keras 3: {"args": [tensor], "kwargs": {}} with keras_history, a single
  // input_layers / output_layers triple, "Functional".
  ordered_json& config = doc["modelTopology"]["config"];
  for (ordered_json& layer : config["layers"]) {
    ordered_json calls = ordered_json::array();
    for (const ordered_json& node : layer["inbound_nodes"]) {
      ordered_json args = ordered_json::array();
      for (const ordered_json& ref : node) {
        args.push_back({{"class_name", "__keras_tensor__"},
                        {"config",
                         {{"shape", {nullptr, 28, 28, 4}},
                          {"dtype", "float32"},
                          {"keras_history", {ref[0], ref[1], ref[2]}}}}});
      }
      calls.push_back({{"args", args}, {"kwargs", ordered_json::object()}});
    }
    layer["inbound_nodes"] = calls;
  }
  config["input_layers"] = config["input_layers"][0];
  config["output_layers"] = config["output_layers"][0];
  doc["modelTopology"]["class_name"] = "Functional";
  write_text(dir.file("model.json"), doc.dump());
  Model keras3 = load_tfjs(dir.path().string());
  model->eval();
  keras3->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::rand({2, 1, 28, 28});
  EXPECT_TRUE(at::equal(model->predict(x), keras3->predict(x)));
  // Saved again as TF.js writes it.
  EXPECT_EQ(model_json(keras3)["modelTopology"]["config"]["layers"][2]["inbound_nodes"],
            ordered_json::parse(R"([[["c",0,0,{}]],[["c2",0,0,{}]]])"));
  EXPECT_EQ(model_json(keras3)["modelTopology"]["class_name"], "Model");
}

TEST(GraphTest, MalformedGraphsAreRefusedNamingTheLayer) {
  const auto expect = [](const std::function<void(ordered_json&)>& edit, const std::string& what) {
    const std::string error = graph_error(edit);
    EXPECT_NE(error.find(what), std::string::npos) << error;
  };
  expect([](ordered_json& c) { entry(c, 1)["inbound_nodes"] = R"([[["act",1,0,{}]]])"_json; },
         "the layers' calls form a cycle (among 'c', 'act'");
  expect([](ordered_json& c) { entry(c, 3)["inbound_nodes"] = R"([[["nope",0,0,{}]]])"_json; },
         "layer 'c2': takes input from 'nope', which is not a layer of the model");
  expect([](ordered_json& c) { entry(c, 4)["inbound_nodes"] = R"([[["act",5,0,{}]]])"_json; },
         "takes input from call 5 of layer 'act', which is called 2 time(s)");
  expect([](ordered_json& c) { entry(c, 4)["inbound_nodes"] = R"([[["act",1,1,{}]]])"_json; },
         "takes output 1 of layer 'act' (the layers here have one output each)");
  expect(
      [](ordered_json& c) {
        entry(c, 4)["inbound_nodes"] = R"([[["act",1,0,{"training":true}]]])"_json;
      },
      "calls the layer with the arguments {\"training\":true}, which are not supported");
  expect([](ordered_json& c) { entry(c, 4)["inbound_nodes"] = R"([[]])"_json; },
         "a call of the layer takes no input");
  expect([](ordered_json& c) { entry(c, 4)["inbound_nodes"] = R"([])"_json; },
         "layer 4 'f' (Flatten): has no inbound node: nothing calls it");
  expect([](ordered_json& c) { entry(c, 4)["inbound_nodes"] = R"([[["act",0,0,{}]]])"_json; },
         "layer 'act' (call 1) does not lead to the model's output 'd'");
  expect(
      [](ordered_json& c) {
        entry(c, 3)["config"]["name"] = "c";
        entry(c, 3)["name"] = "c";
      },
      "layer 3 'c' (Conv2D): two layers have this name");
  expect([](ordered_json& c) { entry(c, 3)["name"] = "c3"; },
         "its entry's \"name\" \"c3\" differs from its config's");
  expect(
      [](ordered_json& c) {
        c["input_layers"].push_back({"in", 0, 0});
      },
      "the model has 2 inputs (in, in): only models of one input load");
  expect(
      [](ordered_json& c) {
        c["output_layers"].push_back({"f", 0, 0});
      },
      "the model has 2 outputs (d, f): only models of one output load");
  expect([](ordered_json& c) { c.erase("output_layers"); }, "missing the \"output_layers\" list");
  expect([](ordered_json& c) { c["input_layers"] = R"([["c",0,0]])"_json; },
         "layer 0 'in' (InputLayer): is not the model's input 'c'");
  expect([](ordered_json& c) { entry(c, 0)["config"].erase("batch_input_shape"); },
         "declares no input shape");
  expect(
      [](ordered_json& c) {
        ordered_json second = entry(c, 0);
        second["name"] = "in2";
        second["config"]["name"] = "in2";
        c["layers"].push_back(second);
      },
      "'in2' (InputLayer): is not the model's input 'in' (its \"input_layers\"): only models "
      "of one input load");
  // A layer called on two shapes.
  expect([](ordered_json& c) { entry(c, 3)["config"]["filters"] = 8; },
         "layer act (Activation): called again on [null,28,28,8]");
  expect([](ordered_json& c) { entry(c, 3)["inbound_nodes"] = R"({"args": 3})"_json; },
         "must be a list");
  expect([](ordered_json& c) { entry(c, 3)["inbound_nodes"] = R"([{"args": [3]}])"_json; },
         "the input 3 is not a reference to a layer's output");
}

TEST(GraphTest, ANodeReadTwiceByOneCallGivesItsOutputTwice) {
  // concatenate([x, x]) and add([x, x]): the output of a node whose last
  // reader reads it twice.
  ModelSpec spec;
  spec.input_shape = {4};
  spec.layers = {test::layer("InputLayer", "in", {{"batch_input_shape", {nullptr, 4}}}),
                 test::layer("Dense", "d", {{"units", 3}}), test::layer("Concatenate", "cat"),
                 test::layer("Add", "add")};
  Graph graph;
  graph.nodes = {{0, {}}, {1, {0}}, {2, {1, 1}}, {3, {2, 2}}};
  graph.output = 3;
  spec.graph = graph;
  torch::manual_seed(8);
  Model model(spec);
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::rand({2, 4});
  const at::Tensor d = at::linear(x, model->weight("d/kernel"), model->weight("d/bias"));
  EXPECT_TRUE(at::allclose(model->predict(x), at::cat({d, d}, 1) * 2, 1e-6, 1e-7));
  EXPECT_EQ(model_outputs(model), 6);
}

TEST(GraphTest, NestedSequentialIsOneLayerWithItsLayersWeights) {
  // As TF.js saves tf.sequential({layers: [dense({inputShape: [6], units: 5,
  // trainable: false}), dense({units: 3})]}) applied in a tf.model: the
  // nested model's call in the graph is its node 1.
  const ordered_json topology = ordered_json::parse(R"({
    "class_name": "Model", "keras_version": "tfjs-layers 4.22.0",
    "config": {"name": "outer", "layers": [
      {"name": "in", "class_name": "InputLayer", "inbound_nodes": [],
       "config": {"batch_input_shape": [null, 6], "dtype": "float32", "sparse": false,
                  "name": "in"}},
      {"name": "inner", "class_name": "Sequential", "inbound_nodes": [[["in", 0, 0, {}]]],
       "config": {"name": "inner", "layers": [
         {"class_name": "Dense", "config": {"units": 5, "activation": "relu", "name": "d1",
          "trainable": false, "batch_input_shape": [null, 6], "dtype": "float32"}},
         {"class_name": "Dense", "config": {"units": 3, "activation": "linear", "name": "d2",
          "trainable": true}}]}},
      {"name": "out", "class_name": "Activation", "inbound_nodes": [[["inner", 1, 0, {}]]],
       "config": {"activation": "softmax", "name": "out", "trainable": true}}],
     "input_layers": [["in", 0, 0]], "output_layers": [["out", 0, 0]]}})");
  torch::manual_seed(6);
  Model model(parse_topology(topology, "nested.json"));
  std::vector<std::string> names;
  for (const ModelWeight& w : model->manifest_weights()) {
    names.push_back(w.name);
  }
  // Trainable first: d2's; then the frozen d1's.
  EXPECT_EQ(names, (std::vector<std::string>{"d2/kernel", "d2/bias", "d1/kernel", "d1/bias"}));
  EXPECT_EQ(count_trainable_params(model), 5 * 3 + 3);
  EXPECT_TRUE(model->ends_in_softmax());
  EXPECT_TRUE(model->sequential_like());
  const std::string summary = summary_text(model);
  EXPECT_NE(summary.find("inner (Sequential)          [[null,6]],[[null,6]]     [null,3]"),
            std::string::npos)
      << summary;
  // Its calls as TF.js numbers them, in the summary and when saved.
  const ordered_json saved = model_topology(model->spec());
  EXPECT_EQ(saved["config"]["layers"][2]["inbound_nodes"],
            ordered_json::parse(R"([[["inner",1,0,{}]]])"));
  EXPECT_EQ(saved["config"]["layers"][1]["config"]["layers"][0]["config"]["trainable"], false);
  EXPECT_FALSE(saved["config"]["layers"][1]["config"].contains("trainable"));
  // It computes its layers one after the other.
  torch::NoGradGuard no_grad;
  model->eval();
  const at::Tensor x = at::rand({4, 6});
  const at::Tensor h =
      at::relu(at::linear(x, model->weight("d1/kernel"), model->weight("d1/bias")));
  const at::Tensor y = at::linear(h, model->weight("d2/kernel"), model->weight("d2/bias"));
  EXPECT_TRUE(at::allclose(model->predict(x), at::softmax(y, 1), 1e-6, 1e-7));
  // Unfrozen as a whole, as TF.js's Container sets its layers' trainable.
  model->set_trainable(1, true);
  EXPECT_EQ(count_trainable_params(model), count_params(model));
  EXPECT_EQ(model_topology(
                model->spec())["config"]["layers"][1]["config"]["layers"][0]["config"]["trainable"],
            true);
  // Keras counts the nested model's calls in the model only.
  ordered_json keras = topology;
  keras["keras_version"] = "2.15.0";
  keras["config"]["layers"][2]["inbound_nodes"] = R"([[["inner", 0, 0, {}]]])"_json;
  EXPECT_NO_THROW(parse_topology(keras, "keras.json"));
  ordered_json own_call = topology;
  own_call["config"]["layers"][2]["inbound_nodes"] = R"([[["inner", 0, 0, {}]]])"_json;
  try {
    parse_topology(own_call, "tfjs.json");
    ADD_FAILURE() << "call 0 of a nested model with its own input loaded";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("its call on its own input"), std::string::npos)
        << e.what();
  }
}

TEST(GraphTest, AHundredThousandLayersLoadAndACycleAmongThemIsFound) {
  // A chain of 100,000 Activation layers: read and built in linear time.
  ordered_json layers = ordered_json::array();
  layers.push_back({{"name", "in"},
                    {"class_name", "InputLayer"},
                    {"config", {{"batch_input_shape", {nullptr, 4}}, {"name", "in"}}},
                    {"inbound_nodes", ordered_json::array()}});
  constexpr int kLayers = 100000;
  for (int i = 0; i < kLayers; ++i) {
    const std::string name = "a" + std::to_string(i);
    const std::string before = i == 0 ? "in" : "a" + std::to_string(i - 1);
    layers.push_back({{"name", name},
                      {"class_name", "Activation"},
                      {"config", {{"activation", "linear"}, {"name", name}}},
                      {"inbound_nodes", {{{before, 0, 0, ordered_json::object()}}}}});
  }
  ordered_json topology = {{"class_name", "Model"},
                           {"config",
                            {{"name", "deep"},
                             {"layers", layers},
                             {"input_layers", {{"in", 0, 0}}},
                             {"output_layers", {{"a" + std::to_string(kLayers - 1), 0, 0}}}}}};
  Model model(parse_topology(topology, "deep.json"));
  EXPECT_EQ(model->graph().nodes.size(), static_cast<size_t>(kLayers + 1));
  torch::NoGradGuard no_grad;
  model->eval();
  const at::Tensor x = at::rand({2, 4});
  EXPECT_TRUE(at::equal(model->predict(x), x));
  // The first Activation now reads the last one: a cycle of 100,000.
  topology["config"]["layers"][1]["inbound_nodes"] = ordered_json::array({ordered_json::array(
      {ordered_json::array({"a" + std::to_string(kLayers - 1), 0, 0, ordered_json::object()})})});
  try {
    parse_topology(topology, "deep.json");
    ADD_FAILURE() << "a cycle loaded";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("form a cycle (among 'a0', 'a1', 'a2', 'a3', 'a4')"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace mnist
