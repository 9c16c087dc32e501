// TF.js Layers format writer: topology JSON, weights manifest, weights.bin
// and atomic file replacement. All libtorch <-> TF.js layout conversions
// live here.
#include "mnist/tfjs_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mnist/error.hpp"

#ifndef MNIST_VERSION
#define MNIST_VERSION "0.0.0"
#endif

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace mnist {

namespace {

ordered_json variance_scaling() {
  return {{"class_name", "VarianceScaling"},
          {"config",
           {{"scale", 1},
            {"mode", "fan_avg"},
            {"distribution", "normal"},
            {"seed", nullptr}}}};
}

ordered_json zeros() {
  return {{"class_name", "Zeros"}, {"config", ordered_json::object()}};
}

ordered_json conv2d(const std::string& name, int filters, bool first) {
  ordered_json c;
  c["filters"] = filters;
  c["kernel_initializer"] = variance_scaling();
  c["kernel_regularizer"] = nullptr;
  c["kernel_constraint"] = nullptr;
  c["kernel_size"] = {3, 3};
  c["strides"] = {1, 1};
  c["padding"] = "valid";
  c["data_format"] = "channels_last";
  c["dilation_rate"] = {1, 1};
  c["activation"] = "relu";
  c["use_bias"] = true;
  c["bias_initializer"] = zeros();
  c["bias_regularizer"] = nullptr;
  c["activity_regularizer"] = nullptr;
  c["bias_constraint"] = nullptr;
  c["name"] = name;
  c["trainable"] = true;
  if (first) {
    c["batch_input_shape"] = {nullptr, 28, 28, 1};
    c["dtype"] = "float32";
  }
  return {{"class_name", "Conv2D"}, {"config", c}};
}

ordered_json max_pooling(const std::string& name) {
  ordered_json c;
  c["pool_size"] = {2, 2};
  c["padding"] = "valid";
  c["strides"] = {2, 2};
  c["data_format"] = "channels_last";
  c["name"] = name;
  c["trainable"] = true;
  return {{"class_name", "MaxPooling2D"}, {"config", c}};
}

ordered_json flatten(const std::string& name) {
  ordered_json c;
  c["name"] = name;
  c["trainable"] = true;
  return {{"class_name", "Flatten"}, {"config", c}};
}

ordered_json dropout(const std::string& name, double rate) {
  ordered_json c;
  c["rate"] = rate;
  c["noise_shape"] = nullptr;
  c["seed"] = nullptr;
  c["name"] = name;
  c["trainable"] = true;
  return {{"class_name", "Dropout"}, {"config", c}};
}

ordered_json dense(const std::string& name, int units, const char* activation) {
  ordered_json c;
  c["units"] = units;
  c["activation"] = activation;
  c["use_bias"] = true;
  c["kernel_initializer"] = variance_scaling();
  c["bias_initializer"] = zeros();
  c["kernel_regularizer"] = nullptr;
  c["bias_regularizer"] = nullptr;
  c["activity_regularizer"] = nullptr;
  c["kernel_constraint"] = nullptr;
  c["bias_constraint"] = nullptr;
  c["name"] = name;
  c["trainable"] = true;
  return {{"class_name", "Dense"}, {"config", c}};
}

/// The axis order that turns a libtorch parameter into TF.js layout: conv
/// [O,I,H,W] -> [H,W,I,O], dense [out,in] -> [in,out], biases unchanged.
/// (No flatten-order permutation is needed: ConvNet flattens in NHWC order.)
std::vector<int64_t> tfjs_axes(int64_t dim) {
  if (dim == 4) {
    return {2, 3, 1, 0};
  }
  if (dim == 2) {
    return {1, 0};
  }
  return {0};
}

/// A parameter as a TF.js view (no copy).
at::Tensor tfjs_view(const at::Tensor& p) { return p.permute(tfjs_axes(p.dim())); }

bool little_endian() {
  const uint32_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

[[noreturn]] void io_fail(const std::string& path, const std::string& what, int err) {
  throw IoError(path + ": " + what + " (" + std::strerror(err) + ")");
}

void write_all(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      io_fail(path, "cannot write", errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void write_atomic(const std::string& path, const char* data, size_t size) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : ".";
  const std::string tmp =
      (dir / ("." + target.filename().string() + ".tmp." +
              std::to_string(::getpid())))
          .string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    io_fail(tmp, "cannot create temporary file", errno);
  }
  try {
    write_all(fd, data, size, tmp);
    if (::fsync(fd) != 0) {
      io_fail(tmp, "cannot flush to disk", errno);
    }
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    io_fail(tmp, "cannot close", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    io_fail(path, "cannot replace with the new file", err);
  }
  // Make the rename itself durable.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace

std::string generated_by() { return std::string("mnist-train v") + MNIST_VERSION; }

ordered_json model_topology() {
  ordered_json layers = ordered_json::array();
  layers.push_back(conv2d("conv2d_Conv2D1", 32, /*first=*/true));
  layers.push_back(conv2d("conv2d_Conv2D2", 32, /*first=*/false));
  layers.push_back(max_pooling("max_pooling2d_MaxPooling2D1"));
  layers.push_back(conv2d("conv2d_Conv2D3", 64, /*first=*/false));
  layers.push_back(conv2d("conv2d_Conv2D4", 64, /*first=*/false));
  layers.push_back(max_pooling("max_pooling2d_MaxPooling2D2"));
  layers.push_back(flatten("flatten_Flatten1"));
  layers.push_back(dropout("dropout_Dropout1", kDropout1Rate));
  layers.push_back(dense("dense_Dense1", 512, "relu"));
  layers.push_back(dropout("dropout_Dropout2", kDropout2Rate));
  layers.push_back(dense("dense_Dense2", 10, "softmax"));
  ordered_json topology;
  topology["class_name"] = "Sequential";
  topology["config"] = {{"name", "sequential_1"}, {"layers", layers}};
  topology["keras_version"] = "tfjs-layers 4.22.0";
  topology["backend"] = "tensor_flow.js";
  return topology;
}

ordered_json model_json(const ConvNet& model) {
  ordered_json weights = ordered_json::array();
  for (const auto& [name, tensor] : model->tfjs_weights()) {
    ordered_json spec;
    spec["name"] = name;
    spec["shape"] = tfjs_view(tensor).sizes().vec();
    spec["dtype"] = "float32";
    weights.push_back(spec);
  }
  ordered_json doc;
  doc["modelTopology"] = model_topology();
  doc["weightsManifest"] = ordered_json::array(
      {{{"paths", {kWeightsFile}}, {"weights", weights}}});
  doc["format"] = "layers-model";
  doc["generatedBy"] = generated_by();
  doc["convertedBy"] = nullptr;
  return doc;
}

std::vector<char> weights_bin(const ConvNet& model) {
  std::vector<char> bytes;
  for (const auto& named : model->tfjs_weights()) {
    const at::Tensor t =
        tfjs_view(named.second.detach()).to(at::kCPU, at::kFloat).contiguous();
    const auto* data = static_cast<const char*>(t.data_ptr());
    const size_t size = static_cast<size_t>(t.numel()) * sizeof(float);
    const size_t offset = bytes.size();
    bytes.insert(bytes.end(), data, data + size);
    if (!little_endian()) {
      for (size_t i = offset; i < bytes.size(); i += 4) {
        std::swap(bytes[i], bytes[i + 3]);
        std::swap(bytes[i + 1], bytes[i + 2]);
      }
    }
  }
  return bytes;
}

void ensure_writable_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw IoError(dir + ": cannot create the model folder (" + ec.message() +
                  "); choose another --model-save-path");
  }
  if (!fs::is_directory(dir, ec)) {
    throw IoError(dir + ": exists and is not a folder; choose another "
                        "--model-save-path");
  }
  const std::string probe =
      (fs::path(dir) / (".mnist-train-probe." + std::to_string(::getpid())))
          .string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw IoError(dir + ": cannot write in the model folder (" +
                  std::strerror(errno) + "); choose another --model-save-path");
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_atomic(path, bytes.data(), bytes.size());
}

void write_file_atomic(const std::string& path, const std::vector<char>& bytes) {
  write_atomic(path, bytes.data(), bytes.size());
}

void save_tfjs(const ConvNet& model, const std::string& dir) {
  ensure_writable_dir(dir);
  write_file_atomic((fs::path(dir) / kWeightsFile).string(), weights_bin(model));
  write_file_atomic((fs::path(dir) / kModelJsonFile).string(), model_json(model).dump());
}

}  // namespace mnist
