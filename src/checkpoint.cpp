// Checkpoint folders: TF.js model files plus raw optimizer/generator/order
// tensors and a state.json written last; folders are renamed into place, and
// renamed to a hidden name before they are deleted, so that a kill at any
// moment leaves every ckpt-* folder whole.
#include "mnist/checkpoint.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/utils.h>

#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/history.hpp"
#include "mnist/tfjs_io.hpp"

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace mnist {

namespace {

constexpr const char* kStateFile = "state.json";
constexpr const char* kPrefix = "ckpt-";
// Hidden folders, named <prefix>ckpt-EEEEEE-BBBBBBB-<pid>: one being written,
// and one being deleted (an old or replaced checkpoint). Neither is ever
// taken for a checkpoint; leftovers of a killed process are removed by the
// next save.
constexpr const char* kWritingPrefix = ".tmp-";
constexpr const char* kDeletingPrefix = ".old-";

std::string raw_bytes(const at::Tensor& t) {
  const at::Tensor c = t.detach().cpu().contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()),
                     static_cast<size_t>(c.numel()) * c.element_size());
}

at::Tensor read_raw(const fs::path& file, at::ScalarType dtype, std::vector<int64_t> shape) {
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  at::Tensor t = at::empty(shape, dtype);
  if (!in.eof() && !in) {
    throw IoError(file.string() + ": cannot read");
  }
  if (bytes.size() != static_cast<size_t>(t.numel()) * t.element_size()) {
    throw FormatError(file.string() + ": holds " + std::to_string(bytes.size()) +
                      " bytes, expected " + std::to_string(t.numel() * t.element_size()));
  }
  if (!bytes.empty()) {  // an empty tensor (SGD's slots) has no data pointer
    std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  }
  return t;
}

std::string folder_name(int64_t epoch, int64_t batch) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s%06lld-%07lld", kPrefix, static_cast<long long>(epoch),
                static_cast<long long>(batch));
  return name;
}

std::string hidden_name(const char* prefix, const std::string& name) {
  return prefix + name + "-" + std::to_string(::getpid());
}

/// Deletes the folder `dir`/`name` so that a kill at any moment leaves it
/// whole or gone from view: it is renamed to a hidden name first.
void discard(const fs::path& dir, const std::string& name) {
  const fs::path hidden = dir / hidden_name(kDeletingPrefix, name);
  remove_tree(hidden.string());
  if (::rename((dir / name).c_str(), hidden.c_str()) == 0) {
    sync_dir(dir);
    remove_tree(hidden.string());
  }
}

/// The writer's pid in a hidden checkpoint folder's name
/// (<prefix>ckpt-EEEEEE-BBBBBBB-<pid>), or what fs_util tags its temporary
/// names with (the writable-folder probe), or "".
std::string leftover_pid(const std::string& name) {
  for (const char* prefix : {kWritingPrefix, kDeletingPrefix}) {
    if (name.rfind(std::string(prefix) + kPrefix, 0) == 0) {
      const size_t sep = name.rfind('-');
      return name.substr(sep + 1);
    }
  }
  return temporary_name_pid(name);
}

/// Complete checkpoint folders in `dir`, oldest first (names sort by position).
/// Hidden folders (being written or deleted, or left so by a kill) never count.
std::vector<std::string> complete_checkpoints(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(kPrefix, 0) == 0 && name.size() == folder_name(0, 0).size() &&
        fs::exists(it->path() / kStateFile)) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::string save_checkpoint(const std::string& dir,
                            const Model& model,
                            const Optimizer& optimizer,
                            const TrainState& state,
                            const ordered_json& settings,
                            const c10::Device& device,
                            const ordered_json& callbacks,
                            const std::vector<at::Tensor>& best_weights) {
  ensure_writable_dir(dir, "checkpoint folder");
  remove_abandoned(dir, leftover_pid);
  const std::string name = folder_name(state.epoch, state.batch);
  const fs::path final_path = fs::path(dir) / name;
  const fs::path tmp = fs::path(dir) / hidden_name(kWritingPrefix, name);
  remove_tree(tmp.string());
  try {
    write_tfjs_files(model, tmp.string());

    std::string slots;
    for (const auto& t : optimizer.slots()) {
      slots += raw_bytes(t.contiguous());
    }
    write_file_atomic((tmp / "optimizer.bin").string(), slots);
    if (!best_weights.empty()) {
      std::string best;
      for (const auto& t : best_weights) {
        best += raw_bytes(t.to(at::kFloat));
      }
      write_file_atomic((tmp / "best_weights.bin").string(), best);
    }
    write_file_atomic((tmp / "rng_cpu.bin").string(),
                      raw_bytes(at::globalContext().defaultGenerator(c10::kCPU).get_state()));
    ordered_json doc;
    doc["format"] = "mnist-train-checkpoint";
    doc["version"] = 1;
    doc["generatedBy"] = generated_by();
    doc["epoch"] = state.epoch;
    doc["batch"] = state.batch;
    doc["loss_sum"] = state.loss_sum;
    doc["correct"] = state.correct;
    doc["optimizer"] = {{"name", optimizer_name(optimizer.kind())},
                        {"learning_rate", optimizer.learning_rate()},
                        {"iterations", optimizer.iterations()},
                        {"slots", optimizer.slot_count()}};
    if (!callbacks.is_null()) {
      doc["callbacks"] = callbacks;
    }
    doc["best_weights"] = !best_weights.empty();
    if (state.order.defined()) {
      write_file_atomic((tmp / "order.bin").string(), raw_bytes(state.order.to(at::kLong)));
      doc["order_size"] = state.order.numel();
    }
    if (device.is_cuda()) {
      const at::Tensor cuda = at::globalContext().defaultGenerator(device).get_state();
      write_file_atomic((tmp / "rng_cuda.bin").string(), raw_bytes(cuda));
      doc["rng_cuda_size"] = cuda.numel();
    }
    doc["rng_cpu_size"] = at::globalContext().defaultGenerator(c10::kCPU).get_state().numel();
    doc["history"] = epochs_to_json(state.history);
    doc["settings"] = settings;
    write_file_atomic((tmp / kStateFile).string(), doc.dump(2) + "\n");  // last: marks it complete

  } catch (const IoError& e) {
    // A full disk or a file-size limit: the folder being written goes, the
    // complete checkpoints stay.
    remove_tree(tmp.string());
    std::string what = e.what();  // name the checkpoint, not its temporary folder
    for (size_t at = what.find(tmp.string()); at != std::string::npos;
         at = what.find(tmp.string(), at)) {
      what.replace(at, tmp.string().size(), final_path.string());
    }
    throw IoError(what + "; the checkpoint was not written, the earlier ones are intact");
  }

  bool swapped = false;
  std::error_code ec;
  if (fs::exists(final_path, ec)) {
    // A stale copy of the same position (an earlier run's): swap the new
    // folder in atomically where the file system can (the hidden temporary
    // name then holds the stale copy); otherwise move the old one out of the
    // way first.
#ifdef RENAME_EXCHANGE
    swapped =
        ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_path.c_str(), RENAME_EXCHANGE) == 0;
#endif
    if (swapped) {
      sync_dir(dir);
      remove_tree(tmp.string());
    } else {
      discard(dir, name);
    }
  }
  if (!swapped && ::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const int err = errno;
    remove_tree(tmp.string());
    throw IoError(final_path.string() + ": cannot move the checkpoint into place (" +
                  std::strerror(err) + ")");
  }
  sync_dir(dir);
  const std::vector<std::string> all = complete_checkpoints(dir);
  for (size_t i = 0; i + 2 < all.size(); ++i) {  // keep the newest two
    discard(dir, all[i]);
  }
  return final_path.string();
}

std::string latest_checkpoint(const std::string& dir) {
  const std::vector<std::string> all = complete_checkpoints(dir);
  return all.empty() ? "" : (fs::path(dir) / all.back()).string();
}

Checkpoint load_checkpoint(const std::string& path) {
  const fs::path dir(path);
  const ordered_json doc = read_json_file((dir / kStateFile).string());
  if (!doc.is_object() || doc.value("format", "") != "mnist-train-checkpoint" ||
      doc.value("version", 0) != 1) {
    throw FormatError((dir / kStateFile).string() + ": not an mnist-train checkpoint (version 1)");
  }
  Checkpoint c;
  c.path = path;
  c.model = load_tfjs(path);
  // Version 1 checkpoints before --optimizer hold RMSprop's mean squares.
  const ordered_json opt = doc.value(
      "optimizer", ordered_json{{"name", "rmsprop"}, {"learning_rate", 0.001}, {"iterations", 0}});
  const auto kind = opt.is_object() && opt.value("name", ordered_json()).is_string()
                        ? parse_optimizer(opt["name"].get<std::string>())
                        : std::nullopt;
  if (!kind || !opt.value("learning_rate", ordered_json()).is_number() ||
      !opt.value("iterations", ordered_json()).is_number_integer()) {
    throw FormatError((dir / kStateFile).string() + ": bad \"optimizer\" entry");
  }
  c.optimizer = *kind;
  c.learning_rate = opt["learning_rate"].get<double>();
  c.optimizer_iterations = opt["iterations"].get<int64_t>();
  const int slots = Optimizer({}, *kind).slot_count();
  const auto read_tensors = [&](const fs::path& file, int copies) {
    std::vector<at::Tensor> out;
    for (int s = 0; s < copies; ++s) {
      for (const auto& p : c.model->parameters()) {
        out.push_back(at::empty(p.sizes(), at::kFloat));
      }
    }
    int64_t total = 0;
    for (const auto& t : out) {
      total += t.numel();
    }
    const at::Tensor flat = read_raw(file, at::kFloat, {total});
    int64_t offset = 0;
    for (auto& t : out) {
      t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
    return out;
  };
  c.optimizer_slots = read_tensors(dir / "optimizer.bin", slots);
  if (doc.value("best_weights", false)) {
    c.best_weights = read_tensors(dir / "best_weights.bin", 1);
  }
  c.callbacks = doc.value("callbacks", ordered_json());
  c.state.epoch = doc.value("epoch", int64_t{1});
  c.state.batch = doc.value("batch", int64_t{0});
  c.state.loss_sum = doc.value("loss_sum", 0.0);
  c.state.correct = doc.value("correct", int64_t{0});
  if (doc.contains("order_size")) {
    c.state.order = read_raw(dir / "order.bin", at::kLong, {doc["order_size"].get<int64_t>()});
  }
  c.state.history = epochs_from_json(doc.value("history", ordered_json::array()));
  c.settings = doc.value("settings", ordered_json::object());
  c.cpu_rng = read_raw(dir / "rng_cpu.bin", at::kByte, {doc.value("rng_cpu_size", int64_t{0})});
  if (doc.contains("rng_cuda_size")) {
    c.cuda_rng = read_raw(dir / "rng_cuda.bin", at::kByte, {doc["rng_cuda_size"].get<int64_t>()});
  }
  return c;
}

void restore_generators(const Checkpoint& checkpoint) {
  at::Generator cpu = at::globalContext().defaultGenerator(c10::kCPU);
  cpu.set_state(checkpoint.cpu_rng);
  if (checkpoint.cuda_rng.defined() && at::hasCUDA()) {
    at::Generator cuda = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, 0));
    cuda.set_state(checkpoint.cuda_rng);
  }
}

}  // namespace mnist
