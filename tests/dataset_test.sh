#!/usr/bin/env bash
# --dataset fashion-mnist on a folder of IDX files (here MNIST's, standing in
# for Fashion-MNIST: same format): the model records its dataset and class
# names in model.json's userDefinedMetadata; predict, evaluate, serve and
# real TF.js see them; metadata.json beside model.json holds them in Teachable
# Machine's form; evaluate prints each class's precision, recall and F1 by
# name; --no-dropout leaves the Dropout layers out.
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
  grep -Eq '"class_name":"(T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot)"' ||
  fail "predict --json has no class_name"
"$train" evaluate --model "$out/model" --data-dir "$data" --test-limit 200 > "$out/eval.txt" ||
  fail "evaluate"
cat "$out/eval.txt"
# The table (precision, recall, F1 with a "*" where undefined, support) and
# the matrix name the classes.
grep -Eq '^  9 Ankle boot +[01]\.[0-9]{4}[ *] +[01]\.[0-9]{4}[ *] +[01]\.[0-9]{4}[ *] +[0-9]+$' \
  "$out/eval.txt" || fail "evaluate's table does not name the classes"
grep -Eq '^  weighted avg +[01]\.[0-9]{4}[ *] +[01]\.[0-9]{4}[ *] +[01]\.[0-9]{4}[ *] +200$' \
  "$out/eval.txt" || fail "evaluate's table has no weighted average over the 200 images"
grep -Eq '^  9 Ankle boot( +[0-9]+){10}$' "$out/eval.txt" || fail "the matrix does not name the rows"
# --json: the scores again, checked against the confusion matrix beside them.
"$train" evaluate --json --model "$out/model" --data-dir "$data" --test-limit 200 > "$out/eval.json" ||
  fail "evaluate --json"
node -e '
const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const C = m.confusion, K = C.length;
const near = (a, b) => Math.abs(a - b) < 1e-12;
if (m.class_names.length !== K || m.per_class.length !== K) throw new Error("not one entry per class");
let macro = 0, weighted = 0;
for (let k = 0; k < K; k++) {
  const tp = C[k][k], row = C[k].reduce((a, b) => a + b, 0);
  const col = C.reduce((a, r) => a + r[k], 0);
  const e = m.per_class[k];
  const p = col ? tp / col : 0, r = row ? tp / row : 0, f = row + col ? 2 * tp / (row + col) : 0;
  if (e.name !== m.class_names[k] || !near(e.precision, p) || !near(e.recall, r) ||
      !near(e.f1, f) || e.support !== row) throw new Error("class " + k + ": " + JSON.stringify(e));
  macro += f / K; weighted += f * row / m.count;
}
if (!near(m.macro_avg.f1, macro) || !near(m.weighted_avg.f1, weighted) || m.macro_avg.support !== m.count)
  throw new Error("averages: " + JSON.stringify([m.macro_avg, m.weighted_avg]));
if (m.per_class[9].name !== "Ankle boot" || m.zero_division !== 0) throw new Error("names or zero_division");
console.log("evaluate --json: per-class scores agree with the matrix; macro F1", m.macro_avg.f1.toFixed(4));
' "$out/eval.json" || fail "evaluate --json per-class scores"
# Teachable Machine's metadata.json beside model.json.
node -e '
const fs = require("fs");
const dir = process.argv[1];
const tm = JSON.parse(fs.readFileSync(dir + "/metadata.json", "utf8"));
const model = JSON.parse(fs.readFileSync(dir + "/model.json", "utf8"));
const want = JSON.stringify(model.userDefinedMetadata.classNames);
if (JSON.stringify(tm.labels) !== want) throw new Error("labels " + JSON.stringify(tm.labels));
if (tm.imageSize !== 28 || tm.grayscale !== true || tm.packageName !== "mnist-train" ||
    tm.tfjsVersion !== "4.22.0" || "tmVersion" in tm || isNaN(Date.parse(tm.timeStamp)) ||
    JSON.stringify(tm.userMetadata) !== "{\"imageSize\":[28,28],\"colorMode\":\"grayscale\",\"inputRange\":[0,1]}")
  throw new Error("metadata.json: " + JSON.stringify(tm));
console.log("metadata.json: labels[9] =", tm.labels[9], "; imageSize", tm.imageSize);
' "$out/model" || fail "metadata.json"
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
