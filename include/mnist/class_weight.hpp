// Class weights (--class-weight): a weight per class that multiplies each
// training image's loss, as TF.js's fit({classWeight}) applies it; the
// "balanced" weights scikit-learn and Keras users know; a weights file.
//
// TF.js's fit (tfjs-layers' training.ts: standardizeUserData, makeTrainFunction;
// training_utils.ts: standardizeWeights, computeWeightedLoss) gives each
// training image the weight of its label (the argmax of its one-hot target),
// multiplies its per-image loss by it and takes the mean over the batch
// size (not over the weights' sum), then adds the regularizers' penalties.
// The accuracy it reports is not weighted, and neither are the validation
// loss and accuracy (its test function takes no weights). A class of the
// training data without a weight is an error there ("classWeight must
// contain all classes in the training data").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

namespace mnist {

/// One weight per model output, in output order; empty: none (every image
/// weighs 1, and the loss is computed as it always was).
using ClassWeights = std::vector<double>;

/// scikit-learn's compute_class_weight("balanced"), which Keras users pass as
/// class_weight: n / (classes * count_c) for each class c, from `labels` ([N]
/// int64, each in 0..classes-1), so that every class weighs as much in the
/// loss as an equal share of the images would. Throws DataError ("... class c
/// has no image ...") when a class has none: its weight would be infinite
/// (scikit-learn refuses such a class too), and ConfigError when a label is
/// outside 0..classes-1 or classes < 1.
ClassWeights balanced_class_weights(const at::Tensor& labels, int64_t classes);

/// The weights of a class-weights JSON object, `{"KEY": weight, ...}`, for a
/// model whose outputs are named `class_names` (one per output). A KEY is a
/// class index "0".."K-1" (TF.js's ClassWeight map `{0: 1.0, 1: 5.0}`, whose
/// keys JSON writes as strings) or a class name. Refused, with ConfigError
/// messages that start with `origin`: anything but an object; a weight that
/// is not a finite number >= 0; all weights 0; a key that is neither an index
/// nor a name (TF.js would silently ignore it: a typo would go unnoticed);
/// a key that is an index of one class and the name of another; two keys for
/// one class; a class without a weight (TF.js's rule for a class of the
/// training data, applied to every class, so that a file is valid or not
/// whatever the data).
ClassWeights class_weights_from_json(const nlohmann::ordered_json& json,
                                     const std::vector<std::string>& class_names,
                                     const std::string& origin);

/// class_weights_from_json of the file at `path` (fs_util's bounded
/// read_json_file). A path that does not exist is a ConfigError saying what
/// --class-weight takes (the CLI passes any word but "balanced" as a path);
/// IoError if it cannot be read; FormatError if it is not JSON.
ClassWeights read_class_weights(const std::string& path,
                                const std::vector<std::string>& class_names);

/// TF.js's weighted categorical cross-entropy: each image's clipped
/// cross-entropy (tfjs_categorical_crossentropy's) times `weights[label]`
/// (weights: [K] float32 on the logits' device, as TF.js's float32 tensor of
/// weights), the mean over the batch.
at::Tensor weighted_categorical_crossentropy(const at::Tensor& logits,
                                             const at::Tensor& labels,
                                             const at::Tensor& weights);

/// "0: 1.25, 1: 0.8, ..." with the class names when they are not the
/// indices ("T-shirt/top: 1.25, ...").
std::string class_weights_text(const ClassWeights& weights,
                               const std::vector<std::string>& class_names);

/// {"0": weight, "1": ...}: TF.js's ClassWeight map, keyed by output index
/// (as JSON keys are strings), what history.json records. read_class_weights
/// reads such a file back unless a digit subset in another order makes an
/// index the name of another class (--labels 1,0: "0" names output 1), which
/// it refuses as ambiguous.
nlohmann::ordered_json class_weights_json(const ClassWeights& weights);

}  // namespace mnist
