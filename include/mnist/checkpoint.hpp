// Training checkpoints: the model (TF.js format), the optimizer state, the
// training position and history, and the random generators, in a folder that
// appears whole or not at all, so that training can resume exactly where it
// stopped (docs/design.md, "Saving without torn files").
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mnist/model.hpp"
#include "mnist/optimizer.hpp"
#include "mnist/train.hpp"

namespace mnist {

/// A checkpoint read back from disk.
struct Checkpoint {
  std::string path;
  Model model{nullptr};
  OptimizerKind optimizer = OptimizerKind::kRmsProp;
  double learning_rate = 0.0;               ///< the rate in use when it was saved
  int64_t optimizer_iterations = 0;         ///< steps the optimizer had taken
  std::vector<at::Tensor> optimizer_slots;  ///< Optimizer::slots(), CPU
  TrainState state;
  nlohmann::ordered_json callbacks;      ///< TrainingCallbacks::state(), or null
  std::vector<at::Tensor> best_weights;  ///< EarlyStopping's best weights, if kept
  nlohmann::ordered_json settings;       ///< what the caller saved with it
  at::Tensor cpu_rng;                    ///< libtorch CPU generator state
  at::Tensor cuda_rng;                   ///< CUDA generator state, if saved
};

/// Writes a checkpoint into `dir` (created if missing) as a folder
/// ckpt-EEEEEE-BBBBBBB (epoch, batch) that appears whole or not at all (it
/// is written under a temporary name, then renamed), and removes older
/// checkpoints but the previous one. Saves the CPU generator's state and,
/// when `device` is CUDA, the CUDA one's; `callbacks` (JSON, may be null)
/// and `best_weights` (copy_parameters(), may be empty) are saved with it.
/// Returns the folder's path. Throws IoError.
std::string save_checkpoint(const std::string& dir,
                            const Model& model,
                            const Optimizer& optimizer,
                            const TrainState& state,
                            const nlohmann::ordered_json& settings,
                            const c10::Device& device,
                            const nlohmann::ordered_json& callbacks = nullptr,
                            const std::vector<at::Tensor>& best_weights = {});

/// The newest complete checkpoint folder in `dir`, or "" if there is none.
std::string latest_checkpoint(const std::string& dir);

/// Reads a checkpoint folder. Throws FormatError or IoError.
Checkpoint load_checkpoint(const std::string& path);

/// Puts the saved generator states back into libtorch's default generators.
void restore_generators(const Checkpoint& checkpoint);

}  // namespace mnist
