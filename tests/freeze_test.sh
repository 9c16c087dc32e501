#!/usr/bin/env bash
# --freeze-up-to: the TF.js-made convnet of tfjs_model.small-convnet (conv 16,
# pool, conv 32, pool, conv 32, flatten, dense 64, dense 10), as
# tfjs_model.fine_tune trained it, fine-tuned one more epoch with its layers
# 0-3 frozen. The frozen layers' weights come out bit for
# bit as they went in (conv 1 and 2: the first 19,200 bytes of the source's
# weights.bin, the last of the new one, where TF.js's model.weights order puts
# non-trainable weights), the layers after them change, model.json marks layers 0-3 trainable: false and
# the rest true, the summary counts them as TF.js does, and real TF.js loads
# the model.
# Usage: freeze_test.sh MNIST_TRAIN SRC_MODEL OUT DATA_DIR NODE_DIR
set -u
. "$(dirname "$0")/lib.sh"
train=$1 src=$2 out=$3 data=$4 node_dir=$5
node=${NODE:-node}
fail=0
rm -rf "$out" && mkdir -p "$out"

"$train" --model-load-path "$src" --freeze-up-to max_pooling2d_MaxPooling2D2 --epochs 1 \
  --train-limit 3000 --test-limit 200 --seed 4 --threads 1 --data-dir "$data" \
  --model-save-path "$out/model" > "$out/train.out" 2> "$out/train.err"
check "training exit status" 0 "$?"
check "the log names the frozen layers" 1 \
  "$(has_match "$out/train.err" 'frozen: layers 0-3 \(conv2d_Conv2D1 to max_pooling2d_MaxPooling2D2\); 28394 of 33194 parameters train')"
check "the summary counts them" 1 \
  "$(has_match "$out/train.out" 'Trainable params: 28394')"
if [ -f "$src/weights.bin" ]; then cp "$src/weights.bin" "$out/source.bin"; else cat "$src"/group1-shard*of*.bin > "$out/source.bin"; fi
head -c 19200 "$out/source.bin" > "$out/frozen.bin"
check "frozen weights unchanged (saved last)" same \
  "$(cmp -s "$out/frozen.bin" <(tail -c 19200 "$out/model/weights.bin") && echo same || echo changed)"
check "the next layer's weights changed (saved first)" changed \
  "$(cmp -s -n 18000 <(tail -c +19201 "$out/source.bin") "$out/model/weights.bin" && echo same || echo changed)"
check "trainable flags in model.json" "false false false false true true true true" \
  "$("$node" -e '
const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log(m.modelTopology.config.layers.map(l => l.config.trainable).join(" "));' "$out/model/model.json")"
"$node" "$node_dir/tfjs_check.js" --model "$out/model" --images "$data/t10k-images-idx3-ubyte" \
  --labels "$data/t10k-labels-idx1-ubyte" --count 200 --params 33194 --min-accuracy 0.7 \
  > "$out/tfjs.out" 2>&1
check "real TF.js loads it" 1 "$(has_text "$out/tfjs.out" PASS)"
# A second fine-tuning from the frozen model keeps them frozen without the flag.
"$train" --model-load-path "$out/model" --epochs 1 --train-limit 500 --test-limit 100 --seed 5 \
  --threads 1 --data-dir "$data" --model-save-path "$out/again" > "$out/again.out" 2>&1
check "trained again" 0 "$?"
check "still frozen" same \
  "$(cmp -s "$out/frozen.bin" <(tail -c 19200 "$out/again/weights.bin") && echo same || echo changed)"
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
