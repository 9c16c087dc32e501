#!/usr/bin/env bash
# --dataset fashion-mnist on a folder of IDX files (here MNIST's, standing in
# for Fashion-MNIST: same format): the model records its dataset and class
# names in model.json's userDefinedMetadata; predict, evaluate, serve and
# real TF.js see them; --no-dropout leaves the Dropout layers out.
# Usage: dataset_test.sh MNIST_TRAIN DATA_DIR NODE_DIR OUT_DIR
set -u
train=$1 data=$2 node_dir=$3 out=$4
rm -rf "$out" && mkdir -p "$out"
fail() { echo "FAIL: $*"; exit 1; }
"$train" --dataset fashion-mnist --data-dir "$data" --no-dropout --epochs 1 --train-limit 1000 \
  --test-limit 200 --seed 2 --model-save-path "$out/model" > "$out/run.txt" 2>&1 || {
  cat "$out/run.txt"; fail "training exited $?"; }
grep -q "(fashion-mnist)" "$out/run.txt" || fail "the log does not name the dataset"
grep -q '"Dropout"' "$out/model/model.json" && fail "model.json still has Dropout layers"
grep -q '"userDefinedMetadata":{"dataset":"fashion-mnist","classNames":\["T-shirt/top","Trouser",' \
  <(tr -d ' \n' < "$out/model/model.json") || fail "no class names in model.json"
grep -q '"dataset": "fashion-mnist"' "$out/model/history.json" || fail "history.json: no dataset"
"$train" summary --model "$out/model" | grep -q "Total params: 594922" || fail "summary"

"$train" predict --model "$out/model" --idx "$data/t10k-images-idx3-ubyte" --index 0 \
  > "$out/predict.txt" || fail "predict"
cat "$out/predict.txt"
grep -Eq '#0: [0-9] (T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot) \(probability' \
  "$out/predict.txt" || fail "predict does not name the class"
"$train" predict --json --model "$out/model" --idx "$data/t10k-images-idx3-ubyte" --index 0 |
  grep -q '"class_name":' || fail "predict --json has no class_name"
"$train" evaluate --model "$out/model" --data-dir "$data" --test-limit 200 > "$out/eval.txt" ||
  fail "evaluate"
grep -q "  9 Ankle boot: " "$out/eval.txt" || fail "evaluate does not name the classes"
# Without --data-dir, evaluate looks where the model's dataset lives.
FASHION_MNIST_DIR=/nonexistent/fashion "$train" evaluate --model "$out/model" 2> "$out/err.txt"
grep -q "/nonexistent/fashion: data folder not found" "$out/err.txt" ||
  { cat "$out/err.txt"; fail "evaluate did not default to the Fashion-MNIST folder"; }

# Real TF.js keeps the metadata.
node -e '
const {loadTf} = require(process.argv[1] + "/tfjs_common.js");
const fs = require("fs");
(async () => {
  const tf = await loadTf();
  const dir = process.argv[2];
  const json = JSON.parse(fs.readFileSync(dir + "/model.json"));
  const bin = fs.readFileSync(dir + "/weights.bin");
  const model = await tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights,
    weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length),
    userDefinedMetadata: json.userDefinedMetadata}));
  const meta = model.getUserDefinedMetadata();
  if (!meta || meta.classNames[7] !== "Sneaker") throw new Error("metadata lost: " + JSON.stringify(meta));
  console.log("TF.js: classNames[7] =", meta.classNames[7], "; layers:", model.layers.length);
})().catch((e) => { console.error(e.message); process.exit(1); });
' "$node_dir" "$out/model" || fail "TF.js does not see the class names"
echo PASS
