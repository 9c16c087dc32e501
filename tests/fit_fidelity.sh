#!/usr/bin/env bash
# Training fidelity: for each optimizer, mnist-train's full-batch steps from a
# saved model must equal real TF.js model.fit() from the same model, compiled
# with that optimizer string: the losses of K steps and the weights after one
# (tests/node/fit_check.js). Dropout is set to rate 0 so both are deterministic.
# Usage: [N=16] [K=3] [BASE=DIR] [CONTINUE=1] [CLASS_WEIGHT=CW] fit_fidelity.sh MNIST_TRAIN DATA_DIR NODE_DIR OUT_DIR [OPTIMIZERS...]
# (N images in the one batch, K >= 2 steps; DATA_DIR with the raw IDX files;
# default: all six optimizers; BASE: start from that saved model, e.g. one
# TF.js made with other layers, instead of a briefly trained mnist-node one;
# CONTINUE=1: both go on with the optimizer state BASE holds, saved by TF.js
# with includeOptimizer, instead of a fresh optimizer; CLASS_WEIGHT=balanced
# or FILE: both train with those class weights, fit's classWeight)
set -euo pipefail
train=$1 data=$2 node_dir=$3 out=$4
shift 4
optimizers=("$@")
[ ${#optimizers[@]} -gt 0 ] || optimizers=(rmsprop adam sgd adagrad adadelta adamax)
n=${N:-16} k=${K:-3}
node=${NODE:-node}
[ "$k" -ge 2 ] || { echo "FAIL: K must be at least 2"; exit 1; }
rm -rf "$out" && mkdir -p "$out"

if [ -n "${BASE:-}" ]; then
  mkdir -p "$out/base" && cp "$BASE"/model.json "$BASE"/*.bin "$out/base/"
else
  # A briefly trained model, so the weights are not just their initialisation.
  "$train" --epochs 1 --train-limit 512 --test-limit 100 --seed 7 --threads 1 -q \
    --model-save-path "$out/base" --data-dir "$data" > "$out/base.txt" 2>&1 || {
    cat "$out/base.txt"; echo "FAIL: training the base model"; exit 1; }
fi
mkdir -p "$out/nodrop"
cp "$out/base/"*.bin "$out/nodrop/"
"$node" -e '
const fs = require("fs");
const m = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
for (const l of m.modelTopology.config.layers) if (l.class_name === "Dropout") l.config.rate = 0;
// TF.js 4.22 saves a SeparableConv2D without its depth_multiplier and then
// cannot load the model when it is above 1: put it back from the kernel.
const shapes = {};
for (const g of m.weightsManifest) for (const w of g.weights) shapes[w.name] = w.shape;
for (const l of m.modelTopology.config.layers) {
  const kernel = shapes[l.config.name + "/depthwise_kernel"];
  if (l.class_name === "SeparableConv2D" && l.config.depth_multiplier == null && kernel) {
    l.config.depth_multiplier = kernel[3];
  }
}
fs.writeFileSync(process.argv[2], JSON.stringify(m));
' "$out/base/model.json" "$out/nodrop/model.json"

failed=() fresh=(--fresh-optimizer) continue=() weighted=()
if [ "${CONTINUE:-0}" = 1 ]; then fresh=() continue=(--continue); fi
if [ -n "${CLASS_WEIGHT:-}" ]; then weighted=(--class-weight "$CLASS_WEIGHT"); fi
for opt in "${optimizers[@]}"; do
  echo "=== $opt: $k steps of $n images"
  # K steps and one step, side by side (one thread each).
  pids=()
  for epochs in "$k" 1; do
    "$train" --model-load-path "$out/nodrop" --train-limit "$n" --batch-size "$n" \
      --validation-split 0 --test-limit 1 --epochs "$epochs" --optimizer "$opt" --seed 1 \
      --threads 1 -q --data-dir "$data" --model-save-path "$out/$opt-$epochs" "${fresh[@]}" "${weighted[@]}" \
      > "$out/$opt-$epochs.txt" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || {
      cat "$out/$opt-$k.txt" "$out/$opt-1.txt"; echo "FAIL: mnist-train --optimizer $opt"; exit 1; }
  done
  if ! "$node" "$node_dir/fit_check.js" --model "$out/nodrop" \
      --images "$data/train-images-idx3-ubyte" --labels "$data/train-labels-idx1-ubyte" \
      --count "$n" --steps "$k" --optimizer "$opt" \
      --ours-steps "$out/$opt-$k" --ours-one "$out/$opt-1" "${continue[@]}" "${weighted[@]}"; then
    failed+=("$opt")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAIL: ${failed[*]}"
  exit 1
fi
echo "all ${#optimizers[@]} optimizers agree with TF.js's fit"
echo PASS
