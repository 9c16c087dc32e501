#!/usr/bin/env bash
# Absurd values run sanely: --epochs 1000000000 with --train-limit 1 trains
# until Ctrl-C, which leaves a checkpoint and says how to resume; a batch size
# of the largest int64 is one step of the whole set (with a warning); a
# --test-limit beyond the file takes the file. (--threads 10000 and
# serve --sample 1000000000 are usage errors: bad_input.* tests.)
# Usage: absurd_values.sh MNIST_TRAIN WORK_DIR
set -u
train=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
fail=0
. "$(dirname "$0")/lib.sh"

# 1. A billion epochs of one image, stopped by SIGINT once three have run.
"$train" --epochs 1000000000 --train-limit 1 --validation-split 0 --test-limit 10 --seed 1 \
  --threads 1 --checkpoint-dir "$work/ckpt" --model-save-path "$work/model" \
  >"$work/epochs.out" 2>"$work/epochs.err" </dev/null &
pid=$!
for _ in $(seq 1 600); do
  grep -q "Epoch 3/1000000000" "$work/epochs.err" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -INT "$pid" 2>/dev/null
wait "$pid"
check "a billion epochs: Ctrl-C exits 130" 130 "$?"
check "a billion epochs: the log counts them" 1 "$(has_text "$work/epochs.err" 'Epoch 1/1000000000')"
ckpt=$(ls -d "$work"/ckpt/ckpt-* 2>/dev/null | head -n 1)
check "a billion epochs: a checkpoint is left" 1 "$([ -n "$ckpt" ] && echo 1 || echo 0)"
check "a billion epochs: it says how to resume" 1 "$(has_text "$work/epochs.err" 'interrupted: checkpoint written to')"

# 2. The largest int64 as batch size: one step of all 100 images an epoch.
"$train" --epochs 1 --train-limit 100 --validation-split 0 --test-limit 10 --seed 1 --threads 1 \
  --batch-size 9223372036854775807 >"$work/batch.out" 2>"$work/batch.err" </dev/null
check "batch size 2^63-1: exit 0" 0 "$?"
check "batch size 2^63-1: warned" 1 \
  "$(has_text "$work/batch.err" 'is more than the 100 training images: each epoch is one step of all of them')"
loss=$(grep -oE 'Epoch 1/1 .* loss: [0-9.]+' "$work/batch.err" | grep -oE '[0-9.]+$')
check "batch size 2^63-1: a real loss (not 0)" 1 "$(awk -v l="$loss" 'BEGIN { print (l > 1.0) ? 1 : 0 }')"

# 3. --test-limit beyond the file: the whole file.
"$train" --epochs 1 --train-limit 20 --validation-split 0 --test-limit 99999999999 --threads 1 \
  >"$work/limit.out" 2>"$work/limit.err" </dev/null
check "test limit beyond the file: exit 0" 0 "$?"
check "test limit beyond the file: all 10000" 1 "$(has_text "$work/limit.err" '20 training, 0 validation, 10000 test images')"
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
