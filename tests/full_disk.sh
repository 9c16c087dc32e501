#!/usr/bin/env bash
# A full disk never costs the old model or the run. With the file-size limit
# lowered (ulimit -f: writes then fail with EFBIG, as on a full disk with
# ENOSPC), a model save, a save into a new folder, a convert and a checkpoint each exit 4
# with a message naming the file and the cause, leave the previous model or
# checkpoint complete (it loads in our loader, and in real TF.js when NODE_DIR
# is given) and leave no staging files behind; a resumed run then finishes.
# Usage: full_disk.sh MNIST_TRAIN WORK_DIR [NODE_DIR]
set -u
train=$1 work=$2 node_dir=${3:-}
node=${NODE:-node}
rm -rf "$work" && mkdir -p "$work"
fail=0
. "$(dirname "$0")/lib.sh"
files() { (cd "$1" && ls -A | grep -vx '.mnist-train.lock' | sort | tr '\n' ' '); }
limit_kb=1000  # weights.bin is 2.3 MB; model.json, history.json a few KB
base=(--epochs 1 --train-limit 200 --test-limit 50 --threads 1)

# 1. Replacing a model.
"$train" "${base[@]}" --seed 1 --model-save-path "$work/model" >/dev/null 2>&1 || { echo "FAIL: first save"; exit 1; }
cp "$work/model/weights.bin" "$work/old-weights.bin"
cp "$work/model/model.json" "$work/old-model.json"
(ulimit -f "$limit_kb"; "$train" "${base[@]}" --seed 2 --model-save-path "$work/model" \
  >/dev/null 2>"$work/save.err" </dev/null)
check "replacing a model: exit 4" 4 "$?"
tail -n 1 "$work/save.err"
check "replacing a model: names the file and the cause" 1 \
  "$(has_match "$work/save.err" "model/weights\.new-[0-9]+-0\.bin: cannot write \(File too large\); the model in .*/model is unchanged")"
check "replacing a model: one error line" 1 "$(grep -c '^\[error\]' "$work/save.err")"
check "replacing a model: weights.bin unchanged" same \
  "$(cmp -s "$work/model/weights.bin" "$work/old-weights.bin" && echo same || echo changed)"
check "replacing a model: model.json unchanged" same \
  "$(cmp -s "$work/model/model.json" "$work/old-model.json" && echo same || echo changed)"
check "replacing a model: no staging files" "history.json model.json weights.bin " "$(files "$work/model")"
"$train" evaluate --model "$work/model" --test-limit 20 >/dev/null 2>&1
check "replacing a model: the old model loads" 0 "$?"

# 2. Saving into a new folder.
(ulimit -f "$limit_kb"; "$train" "${base[@]}" --seed 2 --model-save-path "$work/new" \
  >/dev/null 2>"$work/new.err" </dev/null)
check "a new folder: exit 4" 4 "$?"
check "a new folder: names the file and the cause" 1 \
  "$(has_match "$work/new.err" "new/weights\.bin: cannot write \(File too large\); nothing was saved in")"
check "a new folder: left empty" "" "$(files "$work/new")"

# 2b. convert replacing a model (float16: 1.2 MB, still over the limit).
cp -r "$work/model" "$work/conv"
(ulimit -f "$limit_kb"; "$train" convert --model "$work/model" --out "$work/conv" --quantize float16 \
  >/dev/null 2>"$work/conv.err" </dev/null)
check "convert: exit 4" 4 "$?"
check "convert: names the file and the cause" 1 \
  "$(has_match "$work/conv.err" "conv/weights\.new-[0-9]+-0\.bin: cannot write \(File too large\); the model in .*/conv is unchanged")"
check "convert: the old model kept" same \
  "$(cmp -s "$work/conv/weights.bin" "$work/old-weights.bin" && echo same || echo changed)"
check "convert: no staging files" "history.json model.json weights.bin " "$(files "$work/conv")"
(ulimit -f "$limit_kb"; "$train" convert --model "$work/model" --out "$work/conv" --quantize uint8 \
  >/dev/null 2>&1 </dev/null)
check "convert: uint8 (0.6 MB) fits under the limit" 0 "$?"

# 3. A checkpoint during training: the run stops, the last one stays.
ck=(--train-limit 200 --test-limit 50 --threads 1 --seed 3 --checkpoint-dir "$work/ckpt")
"$train" "${ck[@]}" --epochs 1 --model-save-path "$work/ckmodel" >/dev/null 2>&1 || { echo "FAIL: first checkpoint"; exit 1; }
check "checkpoint: the first run left one" "ckpt-000002-0000000 " "$(files "$work/ckpt")"
(ulimit -f "$limit_kb"; "$train" "${ck[@]}" --epochs 3 --resume --model-save-path "$work/ckmodel" \
  >/dev/null 2>"$work/ckpt.err" </dev/null)
check "checkpoint: exit 4" 4 "$?"
tail -n 1 "$work/ckpt.err"
check "checkpoint: names the file, the cause and where to resume" 1 \
  "$(has_match "$work/ckpt.err" "ckpt-000003-0000000/weights\.bin: cannot write \(File too large\); the checkpoint was not written, the earlier ones are intact; training stopped after epoch 2; resume from .*ckpt-000002-0000000 once there is room, with: .*--resume")"
check "checkpoint: no staging folders" "ckpt-000002-0000000 " "$(files "$work/ckpt")"
if [ -n "$node_dir" ] && [ -d "$node_dir/node_modules/@tensorflow/tfjs" ]; then
  out=$(timeout 120 "$node" "$node_dir/load_check.js" "$work/model" "$work/conv" \
    "$work/ckpt/ckpt-000002-0000000" 2>&1)
  check "real TF.js loads the kept model, the uint8 conversion and the checkpoint" 0 "$?"
  echo "$out"
fi
"$train" "${ck[@]}" --epochs 3 --resume --model-save-path "$work/ckmodel" >/dev/null 2>"$work/resume.err"
check "checkpoint: resuming from it finishes" 0 "$?"
check "checkpoint: it resumed at epoch 2" 1 "$(has_match "$work/resume.err" "resuming at epoch 2, batch 0")"

[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
