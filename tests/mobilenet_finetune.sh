#!/usr/bin/env bash
# Fine-tuning a MobileNet made by real TF.js (make_reference_model.js --arch
# mobilenet-v1 or mobilenet-v2) through the core, as a user would fine-tune
# it: every layer up to UP_TO frozen, a new Dense head of 5 units, trained on
# the model's 96x96x3 inputs.bin with random labels (mnist-train's CLI feeds
# only MNIST-shaped IDX data so far: the core is driven by mnist_fixture
# finetune-raw). Checks:
#   - the parameter counts (total, trainable) equal TF.js's for the same
#     freeze and head (info.json "freeze");
#   - the frozen layers' kernels, gammas and betas do not move;
#   - full-batch SGD steps (TF.js's 'sgd', lr 0.01) equal real TF.js
#     model.fit() from the same model (fit_check.js): the losses of STEPS
#     steps, every weight after one, the frozen BatchNormalization layers'
#     moving statistics among them (TF.js's fit runs them in training mode:
#     batch statistics, and their moving averages move).
# Usage: mobilenet_finetune.sh MNIST_FIXTURE NODE_DIR MODEL_DIR UP_TO OUT_DIR [STEPS]
set -euo pipefail
fixture=$1 node_dir=$2 model=$3 up_to=$4 out=$5 steps=${6:-3}
node=${NODE:-node}
rm -rf "$out" && mkdir -p "$out"

"$fixture" finetune-raw "$model" "$up_to" "$steps" "$out" || { echo "FAIL: finetune-raw"; exit 1; }
read -r count shape < <("$node" -e '
const info = require(process.argv[1]);
console.log(info.count, info.inputShape.join(","));' "$(realpath "$model")/info.json")
"$node" "$node_dir/fit_check.js" --model "$out/start" --inputs "$model/inputs.bin" \
  --input-shape "$shape" --labels "$out/labels-idx1-ubyte" --count "$count" --steps "$steps" \
  --optimizer sgd --ours-steps "$out/steps" --ours-one "$out/one" || {
  echo "FAIL: TF.js's fit differs"; exit 1; }
echo "fine-tuned $model up to $up_to as TF.js does"
echo PASS
