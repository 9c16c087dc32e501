// mnist_bench: times mnist-train's own training loop and evaluation on real
// MNIST, and the machine's float32 matrix-product rate; prints one JSON line.
// --input H,W,C builds mnist-node's architecture for other images (as a
// folder dataset does): MNIST resized bilinearly to HxW and tinted into C
// channels (bench/torch_reference.py makes the same images).
// Driven by bench/run_bench.sh, which alternates it with the PyTorch
// reference (bench/torch_reference.py) and prints the comparison table.
//   mnist_bench train  [--precision fp32|bf16] [--steps N] [--warmup N] [--threads T]
//                      [--batch-size N] [--input H,W,C] [--no-onednn]
//                      [--winograd default|onednn|own|none] [--pooling default|onednn|libtorch]
//                      [--model DIR [--freeze-up-to LAYER] [--head-units K]]
//   mnist_bench eval   [--precision fp32|bf16] [--threads T] [--no-onednn] [--input H,W,C]
//                      [--model DIR ...]
// --model trains (or evaluates) a TF.js Layers model instead of mnist-node's,
// fed MNIST resized to its input shape; --freeze-up-to and --head-units do
// what mnist-train's --freeze-up-to and --replace-head do (a fine-tune).
// Training loads only the images its steps take (warm-up and timed), so that
// large inputs fit; "step_memory_mib" is what training adds to the process
// (activations, gradients, optimizer state, scratch): the peak RSS over the
// warm-up and timed steps less the RSS before the first step, the dataset and
// the model already resident (bench/torch_reference.py measures the same).
//   mnist_bench matmul [--threads T]
//   mnist_bench augment [--spec SPEC] [--size S] [--channels C] [--batches N]
#include <dlfcn.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include "cli/app.hpp"
#include "mnist/augment.hpp"
#include "mnist/data.hpp"
#include "mnist/device.hpp"
#include "mnist/evaluate.hpp"
#include "mnist/model.hpp"
#include "mnist/onednn.hpp"
#include "mnist/train.hpp"

namespace {

using Clock = std::chrono::steady_clock;

/// Seconds since this process started (exec), from /proc.
double seconds_since_process_start() {
  std::ifstream stat("/proc/self/stat");
  std::string field;
  for (int i = 0; i < 22 && stat >> field; ++i) {
  }
  double uptime = 0.0;
  std::ifstream("/proc/uptime") >> uptime;
  return uptime - std::stod(field) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// /proc/cpuinfo's model name (and family/model numbers).
std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, name, family, model;
  while (std::getline(cpuinfo, line) && (name.empty() || family.empty() || model.empty())) {
    const auto value = [&] { return line.substr(line.find(':') + 2); };
    if (line.rfind("model name", 0) == 0) {
      name = value();
    } else if (line.rfind("cpu family", 0) == 0) {
      family = value();
    } else if (line.rfind("model\t", 0) == 0) {
      model = value();
    }
  }
  return name + " (family " + family + ", model " + model + ")";
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

/// A field of /proc/self/status in MiB ("VmRSS", "VmHWM").
double proc_status_mib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      return std::stod(line.substr(key.size() + 1)) / 1024.0;  // "  1234 kB"
    }
  }
  return 0.0;
}

/// Resets VmHWM (the peak RSS) to the current RSS (Linux's clear_refs 5).
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

int64_t arg(const std::vector<std::string>& a, const std::string& name, int64_t fallback) {
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    if (a[i] == name) {
      return std::stoll(a[i + 1]);
    }
  }
  return fallback;
}

std::string text_arg(const std::vector<std::string>& a,
                     const std::string& name,
                     const char* fallback) {
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    if (a[i] == name) {
      return a[i + 1];
    }
  }
  return fallback;
}

/// "H,W,C" → {H, W, C}.
std::vector<int64_t> parse_input(const std::string& text) {
  std::vector<int64_t> dims;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    dims.push_back(std::stoll(text.substr(start, comma - start)));
    start = comma + 1;
  }
  if (dims.size() != 3 || dims[0] < 1 || dims[1] < 1 || (dims[2] != 1 && dims[2] != 3)) {
    throw std::invalid_argument("--input wants H,W,C with C 1 or 3");
  }
  return dims;
}

/// MNIST's images [N,1,28,28] as [N,C,H,W]: resized bilinearly (half-pixel
/// centres) and channel c scaled by 1 - 0.2c, a tint, as
/// bench/torch_reference.py's reshape_images.
mnist::Dataset reshaped(const mnist::Dataset& d, const std::vector<int64_t>& dims) {
  at::Tensor x = d.images;
  if (dims[0] != 28 || dims[1] != 28) {
    x = at::upsample_bilinear2d(x, {dims[0], dims[1]}, /*align_corners=*/false);
  }
  if (dims[2] == 3) {
    x = at::cat({x, x * 0.8, x * 0.6}, 1);
  }
  return mnist::Dataset{x.contiguous(), d.labels};
}

}  // namespace

int main(int argc, char** argv) {
  mnist::cli::reexec_for_fast_blas(argv);  // as mnist-train does
  const std::vector<std::string> a(argv + 1, argv + argc);
  const std::string mode = a.empty() ? "" : a[0];
  const int threads = mnist::configure_cpu_threads(static_cast<int>(arg(a, "--threads", 0)));
  // As the CLI runs it: bf16 asked for on a CPU without bf16 instructions
  // (or with oneDNN held below them) runs fp32.
  const bool bf16_asked = text_arg(a, "--precision", "fp32") == "bf16";
  const mnist::Precision precision = bf16_asked && mnist::cpu_has_bf16()
                                         ? mnist::Precision::kBFloat16
                                         : mnist::Precision::kFloat32;
  const bool onednn = std::find(a.begin(), a.end(), "--no-onednn") == a.end() &&
                      std::find(a.begin(), a.end(), "--libtorch-conv") == a.end();
  mnist::set_onednn_enabled(onednn);
  const std::string winograd = text_arg(a, "--winograd", "default");
  if (winograd != "default") {
    mnist::set_winograd_kernels(winograd == "onednn" ? mnist::WinogradKernels::kOnednn
                                : winograd == "own"  ? mnist::WinogradKernels::kOwnAvx2
                                                     : mnist::WinogradKernels::kNone);
  }
  const std::string pooling = text_arg(a, "--pooling", "default");
  if (pooling != "default") {
    mnist::set_onednn_pooling(pooling == "onednn");
  }
  nlohmann::ordered_json out;
  out["impl"] = "mnist-train";
  out["mode"] = mode;
  out["precision_asked"] = bf16_asked ? "bf16" : "fp32";
  out["precision"] = mnist::precision_name(precision);
  out["threads"] = threads;
  out["cpu"] = cpu_model();
  out["onednn_isa"] = mnist::onednn_cpu_isa();
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  out["openblas_coretype"] = coretype != nullptr ? coretype : "OpenBLAS's own choice";
  out["kernels"] = onednn ? mnist::describe_cpu_kernels(precision == mnist::Precision::kBFloat16)
                          : "libtorch's convolutions and pooling (--no-onednn)";
  torch::manual_seed(1);

  if (mode == "matmul" || mode == "augment") {
    mnist::tune_allocator();  // as the CLI runs its batches
  }
  if (mode == "matmul") {
    // The machine's float32 rate: BLAS on all threads (configure_cpu_threads
    // limits OpenBLAS to one thread for training, see device.hpp).
    using SetThreads = void (*)(int);
    if (auto* set_openblas =
            reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
      set_openblas(threads);
    }
    const at::Tensor x = at::rand({2048, 2048});
    const at::Tensor y = at::rand({2048, 2048});
    std::vector<double> rates;
    for (int i = 0; i < 12; ++i) {
      const auto t0 = Clock::now();
      (void)at::mm(x, y);
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (i >= 2) {
        rates.push_back(2.0 * 2048.0 * 2048.0 * 2048.0 / s / 1e9);
      }
    }
    out["gflops"] = median(rates);
  } else if (mode == "augment") {
    // One augmentation thread's cost (what --augment-threads 1 adds beside
    // the step): Augmenter::batch on batches of 128 uint8 images, its own
    // CPU time (CLOCK_THREAD_CPUTIME_ID: what it takes from the step's
    // cores) and wall time.
    const std::string spec_text = text_arg(a, "--spec", "default");
    const int64_t side = arg(a, "--size", 28);
    const int64_t channels = arg(a, "--channels", 1);
    const int64_t batches = arg(a, "--batches", 200);
    const int64_t batch = 128;
    mnist::Dataset data;
    data.images = at::randint(0, 256, {batch * 10, channels, side, side}, at::kByte);
    data.labels = at::zeros({batch * 10}, at::kLong);
    const mnist::Augmenter augmenter(mnist::parse_augment_spec(spec_text), 1);
    const auto thread_cpu = [] {
      timespec t{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
    };
    for (int64_t b = 0; b < 5; ++b) {  // warm-up
      (void)augmenter.batch(data, at::arange(b % 10 * batch, (b % 10 + 1) * batch, at::kLong), 1,
                            b);
    }
    const double cpu0 = thread_cpu();
    const auto t0 = Clock::now();
    for (int64_t b = 0; b < batches; ++b) {
      (void)augmenter.batch(data, at::arange(b % 10 * batch, (b % 10 + 1) * batch, at::kLong), 2,
                            b);
    }
    const double cpu = thread_cpu() - cpu0;
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const double images = static_cast<double>(batches * batch);
    out["spec"] = mnist::augment_spec_text(augmenter.spec());
    out["image"] =
        std::to_string(side) + "x" + std::to_string(side) + "x" + std::to_string(channels);
    out["images"] = batches * batch;
    out["cpu_us_per_image"] = 1e6 * cpu / images;
    out["images_per_cpu_second"] = images / cpu;
    out["images_per_second_wall"] = images / wall;
  } else if (mode == "train" || mode == "eval") {
    const std::string model_dir = text_arg(a, "--model", "");
    mnist::Model model = [&] {
      if (model_dir.empty()) {
        mnist::ModelSpec spec = mnist::mnist_node_spec();
        const std::vector<int64_t> input = parse_input(text_arg(a, "--input", "28,28,1"));
        spec.input_shape = {input[0], input[1], input[2]};
        return mnist::Model(spec);
      }
      mnist::Model loaded = mnist::load_tfjs(model_dir);
      const std::string up_to = text_arg(a, "--freeze-up-to", "");
      if (!up_to.empty()) {
        out["frozen_layers"] = mnist::freeze_up_to(loaded, up_to);
      }
      const int64_t head = arg(a, "--head-units", 0);
      if (head > 0) {
        loaded = mnist::replace_head(loaded, head);
      }
      out["params"] = mnist::count_params(loaded);
      out["trainable_params"] = mnist::count_trainable_params(loaded);
      return loaded;
    }();
    const auto& shape = model->spec().input_shape;
    if (shape.size() != 3) {
      throw std::invalid_argument("the model's input is not an image (H,W,C)");
    }
    const std::vector<int64_t> input{shape[0], shape[1], shape[2]};
    out["input"] = input;
    mnist::to_channels_last(model);
    const int64_t batch = arg(a, "--batch-size", 128);
    const int64_t steps = arg(a, "--steps", 60);
    const int64_t warmup = arg(a, "--warmup", 10);
    // Training: only the images its steps take (the first 85% of what is
    // loaded train, as split_validation keeps them). Evaluation: the test set.
    const int64_t train_images = mode == "train" ? (warmup + steps) * batch * 100 / 85 + 100 : 1;
    mnist::MnistData data = mnist::load_mnist(mnist::default_data_dir(), train_images, 0);
    data.train = reshaped(data.train, input);
    data.test = mode == "train" ? mnist::Dataset{} : reshaped(data.test, input);
    if (mode == "train") {
      const mnist::Split split = mnist::split_validation(data.train, 0.15);
      mnist::Optimizer optimizer(model->parameters(), mnist::OptimizerKind::kRmsProp);
      mnist::TrainConfig cfg;
      cfg.epochs = 1;
      cfg.batch_size = batch;
      cfg.precision = precision;
      cfg.progress_every = 1;
      // Warm-up: the first steps (and the first batch's start-up time).
      double first_batch_at = 0.0;
      mnist::TrainCallbacks warm_cb;
      warm_cb.on_batch = [&](const mnist::BatchProgress& p) {
        if (p.batch == 1) {
          first_batch_at = seconds_since_process_start();
        }
      };
      const mnist::Dataset warm{split.train.images.narrow(0, 0, warmup * batch),
                                split.train.labels.narrow(0, 0, warmup * batch)};
      mnist::TrainState state;
      mnist::tune_allocator();  // as the CLI: once the data is loaded
      const double rss_before = proc_status_mib("VmRSS");
      reset_peak_rss();
      mnist::train(model, optimizer, warm, mnist::Dataset{}, cfg, state, warm_cb);
      // Timed: `steps` steps of the real loop, per-step times from its callback.
      std::vector<double> step_ms;
      auto last = Clock::now();
      mnist::TrainCallbacks cb;
      cb.on_batch = [&](const mnist::BatchProgress&) {
        const auto now = Clock::now();
        step_ms.push_back(std::chrono::duration<double, std::milli>(now - last).count());
        last = now;
      };
      const mnist::Dataset timed{split.train.images.narrow(0, 0, steps * batch),
                                 split.train.labels.narrow(0, 0, steps * batch)};
      mnist::TrainState state2;
      last = Clock::now();
      {
        // MNIST_BENCH_TRACE=FILE: libtorch's profiler over the timed steps
        // (a chrome://tracing file: every operator's time, for a profile).
        const char* trace = std::getenv("MNIST_BENCH_TRACE");
        std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
        if (trace != nullptr) {
          profile = std::make_unique<torch::autograd::profiler::RecordProfile>(trace);
        }
        mnist::train(model, optimizer, timed, mnist::Dataset{}, cfg, state2, cb);
      }
      step_ms.erase(step_ms.begin());  // includes the epoch's set-up (shuffle)
      // Throughput from the mean step (what an epoch takes, slow steps
      // included); the median step as well, to show how steady it is.
      double total_ms = 0.0;
      for (const double t : step_ms) {
        total_ms += t;
      }
      const double mean_ms = total_ms / static_cast<double>(step_ms.size());
      out["batch_size"] = batch;
      out["ms_per_step"] = mean_ms;
      out["median_step_ms"] = median(step_ms);
      out["images_per_second"] = static_cast<double>(batch) * 1000.0 / mean_ms;
      out["startup_to_first_batch_s"] = first_batch_at;
      out["step_memory_mib"] = proc_status_mib("VmHWM") - rss_before;
    } else {
      mnist::tune_allocator();
      const mnist::Dataset test = data.test;
      mnist::evaluate(
          model, mnist::Dataset{test.images.narrow(0, 0, 1024), test.labels.narrow(0, 0, 1024)},
          256, precision);  // warm-up
      std::vector<double> rates;
      for (int i = 0; i < 3; ++i) {
        const char* trace = i == 0 ? std::getenv("MNIST_BENCH_TRACE") : nullptr;
        std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
        if (trace != nullptr) {  // the first timed pass, as in train
          profile = std::make_unique<torch::autograd::profiler::RecordProfile>(trace);
        }
        const auto t0 = Clock::now();
        mnist::evaluate(model, test, 256, precision);
        profile.reset();
        rates.push_back(static_cast<double>(test.size()) /
                        std::chrono::duration<double>(Clock::now() - t0).count());
      }
      out["eval_images_per_second"] = median(rates);
    }
  } else {
    std::fprintf(stderr,
                 "usage: mnist_bench train|eval|matmul [--precision fp32|bf16] "
                 "[--steps N] [--warmup N] [--threads T] [--input H,W,C] [--no-onednn]\n");
    return 2;
  }
  out["peak_rss_mib"] = peak_rss_mib();
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
