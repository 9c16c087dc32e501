// The optimizers TF.js's model.compile() knows by name ('rmsprop', 'adam',
// 'sgd', 'adagrad', 'adadelta', 'adamax'), each computing exactly what
// tfjs-core's optimizer of that name computes, with the arguments
// tfjs-layers' getOptimizer gives it (docs/design.md, "Optimizers").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace mnist {

enum class OptimizerKind { kRmsProp, kAdam, kSgd, kAdagrad, kAdadelta, kAdamax };

/// The name model.compile() takes ("rmsprop", "adam", ...).
const char* optimizer_name(OptimizerKind kind);
/// The kind of a name as optimizer_name() writes it (lower case); nullopt
/// for anything else.
std::optional<OptimizerKind> parse_optimizer(const std::string& name);
/// Every name, in OptimizerKind's order.
std::vector<std::string> optimizer_names();

/// tfjs-layers getOptimizer's arguments (epsilon() = 1e-7; Adagrad's epsilon
/// is the backend's, also 1e-7 on the CPU):
///   rmsprop  rmsprop(0.001, decay 0.9, momentum 0, 1e-7)
///   adam     adam(0.001, 0.9, 0.999, 1e-7)
///   sgd      sgd(0.01)
///   adagrad  adagrad(0.01), initial accumulator 0.1
///   adadelta adadelta(1, rho 0.95, 1e-7)
///   adamax   adamax(0.002, 0.9, 0.999, 1e-7, decay 0)
struct OptimizerDefaults {
  double learning_rate;
  double rho;    ///< RMSprop decay, Adadelta rho (0 where unused)
  double beta1;  ///< Adam, Adamax (0 where unused)
  double beta2;
  double epsilon;
  double initial_accumulator;  ///< Adagrad
};
OptimizerDefaults optimizer_defaults(OptimizerKind kind);

/// One of TF.js's optimizers over a fixed list of float32 parameters. Per
/// parameter w with gradient g, step t = 1, 2, ... (tfjs-core's *_optimizer.ts):
///   rmsprop  ms = rho ms + (1-rho) g^2;  w -= lr g / sqrt(ms + eps)
///   adam     m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
///            w -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
///   sgd      w -= lr g
///   adagrad  a += g^2 (a starts at 0.1);  w -= lr g / sqrt(a + eps)
///   adadelta u = sqrt(d + eps) / sqrt(a + eps) g  (a before this step: TF.js's
///            order, where Keras uses the new a);  a = rho a + (1-rho) g^2;
///            d = rho d + (1-rho) u^2;  w -= lr u
///   adamax   m = b1 m + (1-b1) g;  n = max(b2 n, |g|);
///            w -= lr / (1-b1^t) m / (n + eps)
/// The slots (ms; m, v; a; a, d; m, n) live on the parameters' device in
/// float32 with the parameters' strides, whatever the compute precision.
class Optimizer {
 public:
  /// `learning_rate` <= 0 or NaN: the kind's TF.js default.
  Optimizer(std::vector<at::Tensor> params, OptimizerKind kind, double learning_rate = 0.0);

  /// Applies one update from the gradients in each parameter's .grad().
  /// Parameters without a gradient are left alone.
  void step();

  /// Drops the gradients (sets them undefined, so the next backward pass
  /// writes them instead of accumulating).
  void zero_grad();

  OptimizerKind kind() const { return kind_; }
  double learning_rate() const { return learning_rate_; }
  /// Changes the rate for the next steps (ReduceLROnPlateau, a schedule);
  /// must be finite and >= 0.
  void set_learning_rate(double learning_rate);
  /// Steps taken (Adam's and Adamax's t before the next step).
  int64_t iterations() const { return iterations_; }
  /// Whether a CUDA graph that captured step() computes, on replay, what
  /// step() would: a replay keeps the numbers the host passed at capture.
  /// The rate stays until set_learning_rate (train() captures again then);
  /// Adam's and Adamax's bias corrections 1 - beta^t change every step, so
  /// they are not replayable.
  bool step_is_replayable() const;
  /// Counts a step that a captured graph replayed: a replay runs none of
  /// step()'s host code, the count's increment included.
  void count_replayed_step() { ++iterations_; }

  /// Slot tensors per parameter (0 for sgd, 1 or 2 for the others).
  int slot_count() const;
  /// The state: slot s of parameter i at [s * params + i].
  const std::vector<at::Tensor>& slots() const { return slots_; }

  /// Restores saved slots (same count and shapes, any device) and the step
  /// count; throws ConfigError otherwise.
  void load_state(const std::vector<at::Tensor>& slots, int64_t iterations);
  /// The parameters it updates, in slot order.
  const std::vector<at::Tensor>& params() const { return params_; }

 private:
  std::vector<at::Tensor> params_;
  std::vector<at::Tensor> slots_;
  OptimizerKind kind_;
  OptimizerDefaults hyper_;
  double learning_rate_;
  int64_t iterations_ = 0;
};

/// TF.js's names of `kind`'s slots, in slots() order (tfjs-core's
/// *_optimizer.ts: "<weight>/rms"; "/m", "/v"; "/accumulator"; "/accum_grad",
/// "/accum_var"; none for sgd); nullopt for adamax, whose state TF.js cannot
/// save (getWeights() is not implemented there).
std::optional<std::vector<std::string>> tfjs_slot_names(OptimizerKind kind);

/// Takes over the state TF.js saved with a model (model.save(...,
/// {includeOptimizer: true}); Model's saved_optimizer) when it is this
/// optimizer's: `class_name` and `config` from its trainingConfig (class ""
/// when unknown), `weights` "iter" and "<param name>/<slot>" in libtorch
/// layout. `param_names`: TF.js's name of each of optimizer.params(). Every
/// parameter that takes gradients needs its slots; the frozen ones keep
/// fresh slots. Returns "" when the state was taken over, else why not
/// (nothing changed then). The learning rate stays the optimizer's own.
std::string load_tfjs_state(Optimizer& optimizer,
                            const std::vector<std::string>& param_names,
                            const std::string& class_name,
                            const nlohmann::ordered_json& config,
                            const std::vector<std::pair<std::string, at::Tensor>>& weights);

}  // namespace mnist
