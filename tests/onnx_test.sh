#!/usr/bin/env bash
# convert --to onnx on a model real TF.js made (make_reference_model.js,
# whose probs.bin holds TF.js's predictions): the ONNX file passes ONNX's
# checker (python3-onnx, full_check: shapes inferred through every node), its
# opset and producer are ours, its input is TF.js's (name and NHWC shape), and
# ONNX Runtime (onnxruntime-node) predicts what TF.js predicted, to 1e-5.
# Usage: onnx_test.sh MNIST_TRAIN TFJS_MODEL_DIR OUT NODE_DIR INPUTS...
#   INPUTS: onnx_check.js's, e.g. --images FILE --count 100, or
#   --inputs FILE --input-shape 96,96,3 --count 8
set -u
. "$(dirname "$0")/lib.sh"
train=$1 model=$2 out=$3 node_dir=$4
shift 4
node=${NODE:-node}
python=${PYTHON:-/usr/bin/python3}
fail=0
rm -rf "$out" && mkdir -p "$out"
onnx="$out/model.onnx"

"$train" convert --model "$model" --to onnx --out "$onnx" > "$out/convert.out" 2> "$out/convert.err"
check "convert --to onnx: exit status" 0 "$?"
cat "$out/convert.err"
check "convert says what it saved" 1 "$(has_match "$out/convert.err" "saved .*model.onnx \(ONNX, opset 13, [0-9]+ bytes\): input '[^']+' \[batch,[0-9,]+\], output '[^']+' \[batch,[0-9]+\]")"

# TF.js's input name: a functional model's InputLayer, "<first layer>_input"
# for a Sequential model (tfjs-layers' Sequential.add).
input_name=$("$node" -e '
const t = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).modelTopology;
const c = t.config;
console.log(t.class_name === "Sequential" ? (c.layers || c)[0].config.name + "_input" : c.input_layers[0][0]);
' "$model/model.json")

"$python" - "$onnx" <<'EOF' > "$out/checker.out" 2>&1
import sys
import onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
opsets = {o.domain: o.version for o in m.opset_import}
print("checker: ok; opset", opsets.get("", "?"), "producer", m.producer_name,
      "input", m.graph.input[0].name, "nodes", len(m.graph.node))
EOF
check "onnx.checker.check_model(full_check=True)" 0 "$?"
cat "$out/checker.out"
check "opset 13, producer mnist-train, TF.js's input name" 1 \
  "$(has_text "$out/checker.out" "checker: ok; opset 13 producer mnist-train input $input_name ")"

"$node" "$node_dir/onnx_check.js" --model "$onnx" --input-name "$input_name" \
  --expect "$model/probs.bin" --tol 1e-5 "$@" > "$out/ort.out" 2>&1
check "onnxruntime-node: exit status" 0 "$?"
cat "$out/ort.out"
check "onnxruntime-node predicts TF.js's probabilities to 1e-5" 1 "$(has_text "$out/ort.out" "PASS: ")"

[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
