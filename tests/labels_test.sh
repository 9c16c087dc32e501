#!/usr/bin/env bash
# --labels and --replace-head, the transfer-learning workflow of
# tfjs-examples' mnist-transfer-cnn on small data: a base convnet trained on
# digits 0-4, then transferred to 5-9 (a new 5-unit head, the convolutions
# frozen). Checks what each model.json says (units, labels, class names,
# trainable flags; metadata.json's labels), that the frozen weights come out
# bit for bit, that evaluate and predict speak of the real digits, that a
# model of one label set does not silently train on another, and that real
# TF.js loads the transferred model and scores the same images as our
# evaluate does.
# Usage: labels_test.sh MNIST_TRAIN OUT DATA_DIR NODE_DIR
set -u
. "$(dirname "$0")/lib.sh"
train=$1 out=$2 data=$3 node_dir=$4
node=${NODE:-node}
fail=0
rm -rf "$out" && mkdir -p "$out"
common=(--epochs 2 --train-limit 6000 --test-limit 200 --threads 1 --data-dir "$data")
# json FILE EXPR: EXPR of the JSON in FILE (m), printed by node.
json() {
  "$node" -e 'const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log(String(eval(process.argv[2])));' "$1" "$2"
}
layers='m.modelTopology.config.layers'

# 1. The base model: digits 0-4 only.
"$train" "${common[@]}" --labels 0-4 --seed 3 --model-save-path "$out/base" \
  > "$out/base.out" 2> "$out/base.err"
check "base: exit status" 0 "$?"
check "base: the log says the labels" 1 "$(has_match "$out/base.err" 'data: [0-9]+ training, .*, labels 0-4$')"
check "base: a 5-unit head" 5 "$(json "$out/base/model.json" "$layers.at(-1).config.units")"
check "base: metadata" '{"dataset":"mnist","classNames":["0","1","2","3","4"],"labels":[0,1,2,3,4]}' \
  "$(json "$out/base/model.json" 'JSON.stringify(m.userDefinedMetadata)')"
check "base: Teachable Machine's metadata.json" '["0","1","2","3","4"] 28 true mnist-train' \
  "$(json "$out/base/metadata.json" 'JSON.stringify(m.labels) + " " + m.imageSize + " " + m.grayscale + " " + m.packageName')"
"$train" evaluate --model "$out/base" --data-dir "$data" --test-limit 200 --json > "$out/base_eval.json"
check "base: evaluate exit status" 0 "$?"
# The first 200 test labels hold this many of 0-4.
in_set=$("$node" -e 'const b = require("fs").readFileSync(process.argv[1]).subarray(8, 208);
console.log(b.filter(l => l <= 4).length);' "$data/t10k-labels-idx1-ubyte")
check "base: evaluated on digits 0-4 only" "$in_set [0,1,2,3,4] 5x5" \
  "$(json "$out/base_eval.json" 'm.count + " " + JSON.stringify(m.labels) + " " + m.confusion.length + "x" + m.confusion[0].length')"
check "base: accuracy" 1 "$(json "$out/base_eval.json" 'm.accuracy > 0.8 ? 1 : 0')"

# 2. The same model cannot be trained on other labels without a new head.
"$train" "${common[@]}" --model-load-path "$out/base" --labels 5,6,7 > "$out/mismatch.out" 2>&1
check "other labels without --replace-head: exit status" 2 "$?"
check "  ... and why" 1 "$(has_text "$out/mismatch.out" \
  'the model has 5 outputs (labels 0-4), --labels 5,6,7 needs 3; add --replace-head')"
# Without --labels, a loaded model keeps its label set.
"$train" --epochs 1 --train-limit 500 --test-limit 200 --threads 1 --data-dir "$data" --seed 5 \
  --model-load-path "$out/base" --model-save-path "$out/again" > "$out/again.out" 2>&1
check "trained again without --labels: exit status" 0 "$?"
check "  ... keeps labels 0-4" '[0,1,2,3,4]' "$(json "$out/again/model.json" 'JSON.stringify(m.userDefinedMetadata.labels)')"

# 3. Transfer to 5-9: a new head, the convolutions (layers 0-5) frozen.
"$train" "${common[@]}" --model-load-path "$out/base" --labels 5-9 --replace-head \
  --freeze-up-to max_pooling2d_MaxPooling2D2 --seed 4 --model-save-path "$out/transfer" \
  > "$out/transfer.out" 2> "$out/transfer.err"
check "transfer: exit status" 0 "$?"
check "transfer: the log says the new head" 1 \
  "$(has_text "$out/transfer.err" 'new head: dense_Dense2 has 5 units, for labels 5-9')"
check "transfer: metadata" '{"dataset":"mnist","classNames":["5","6","7","8","9"],"labels":[5,6,7,8,9]}' \
  "$(json "$out/transfer/model.json" 'JSON.stringify(m.userDefinedMetadata)')"
check "transfer: metadata.json's labels" '["5","6","7","8","9"]' \
  "$(json "$out/transfer/metadata.json" 'JSON.stringify(m.labels)')"
check "transfer: trainable flags" "false false false false false false true true true true true" \
  "$(json "$out/transfer/model.json" "$layers.map(l => l.config.trainable).join(' ')")"
# The four convolutions' 64,992 weights: first in the base's weights.bin,
# last in the transferred one's (TF.js puts non-trainable weights last).
check "transfer: frozen convolutions unchanged" same \
  "$(cmp -s <(head -c 259968 "$out/base/weights.bin") <(tail -c 259968 "$out/transfer/weights.bin") \
     && echo same || echo changed)"
check "transfer: weights.bin size (592,357 parameters)" 2369428 "$(stat -c %s "$out/transfer/weights.bin")"
"$train" evaluate --model "$out/transfer" --data-dir "$data" --test-limit 200 --json > "$out/transfer_eval.json"
check "transfer: evaluated on 5-9" "$((200 - in_set)) [5,6,7,8,9]" \
  "$(json "$out/transfer_eval.json" 'm.count + " " + JSON.stringify(m.labels)')"
"$train" evaluate --model "$out/transfer" --data-dir "$data" --test-limit 200 > "$out/transfer_eval.txt"
check "transfer: evaluate's rows are the digits" 1 \
  "$(has_match "$out/transfer_eval.txt" '^  9 +[01]\.[0-9]{4}[ *] +[01]\.[0-9]{4}[ *] +[01]\.[0-9]{4}[ *] +[0-9]+$')"
check "transfer: the matrix's rows are the digits" 1 \
  "$(has_match "$out/transfer_eval.txt" '^  9( +[0-9]+){5}$')"
check "transfer: no row for a digit it does not know" 0 \
  "$(has_match "$out/transfer_eval.txt" '^  4 ')"
check "transfer: --json names the classes" '["5","6","7","8","9"] 9' \
  "$(json "$out/transfer_eval.json" 'JSON.stringify(m.class_names) + " " + m.per_class[4].name')"
# Test image 0 is a 7.
"$train" predict --model "$out/transfer" --idx "$data/t10k-images-idx3-ubyte" --index 0 --json \
  > "$out/predict.json"
check "transfer: predict says the digit" "7 7 5" \
  "$(json "$out/predict.json" 'm[0].label + " " + m[0].class_name + " " + m[0].probabilities.length')"
"$train" predict --model "$out/transfer" --idx "$data/t10k-images-idx3-ubyte" --index 0 \
  > "$out/predict.txt"
check "transfer: predict's text" 1 "$(has_match "$out/predict.txt" ': 7 \(probability 0\.[0-9]{4}\)$')"

# 4. Real TF.js: loads it (592,357 parameters) and gets, on the same images
# of 5-9, the count right that our evaluate got.
correct=$(json "$out/transfer_eval.json" 'Math.round(m.accuracy * m.count) + "/" + m.count')
"$node" "$node_dir/tfjs_check.js" --model "$out/transfer" --images "$data/t10k-images-idx3-ubyte" \
  --labels "$data/t10k-labels-idx1-ubyte" --count 200 --params 592357 --min-accuracy 0.5 \
  > "$out/tfjs.out" 2>&1
check "real TF.js loads it" 1 "$(has_text "$out/tfjs.out" PASS)"
check "TF.js scores as evaluate ($correct)" 1 "$(has_text "$out/tfjs.out" "($correct)")"
cat "$out/tfjs.out"
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
