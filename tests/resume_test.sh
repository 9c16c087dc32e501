#!/usr/bin/env bash
# Ctrl-C (SIGINT) in the middle of an epoch, then --resume, must end with the
# same model, bit for bit, as an uninterrupted run (one thread, same seed).
# Usage: resume_test.sh MNIST_TRAIN DATA_DIR OUT_DIR
set -u
train=$1 data=$2 out=$3
rm -rf "$out" && mkdir -p "$out"
args=(--threads 1 --epochs 3 --train-limit 3000 --test-limit 500 --seed 5 --data-dir "$data")

"$train" "${args[@]}" --model-save-path "$out/straight" > "$out/straight.txt" 2>&1 || {
  cat "$out/straight.txt"; echo "FAIL: uninterrupted run"; exit 1; }

"$train" "${args[@]}" --checkpoint-dir "$out/ck" --model-save-path "$out/resumed" \
  > "$out/first.txt" 2>&1 &
pid=$!
# Wait for the first epoch's checkpoint, then interrupt early in epoch 2.
for _ in $(seq 1 600); do
  compgen -G "$out/ck/ckpt-*" > /dev/null && break
  sleep 0.1
done
sleep 0.4
kill -INT "$pid"
wait "$pid"
rc=$?
cat "$out/first.txt"
[ "$rc" -eq 130 ] || { echo "FAIL: interrupted run exited $rc, expected 130"; exit 1; }
grep -q "resume with: .* --resume" "$out/first.txt" || { echo "FAIL: no resume hint"; exit 1; }
[ ! -e "$out/resumed/weights.bin" ] || { echo "FAIL: an interrupted run saved a model"; exit 1; }

"$train" "${args[@]}" --checkpoint-dir "$out/ck" --model-save-path "$out/resumed" --resume \
  > "$out/second.txt" 2>&1 || { cat "$out/second.txt"; echo "FAIL: resumed run"; exit 1; }
cat "$out/second.txt"
grep "resuming at" "$out/second.txt"
echo "uninterrupted: $(grep -A1 'Evaluation result' "$out/straight.txt" | tail -1)"
echo "resumed:       $(grep -A1 'Evaluation result' "$out/second.txt" | tail -1)"
cmp "$out/straight/weights.bin" "$out/resumed/weights.bin" || {
  echo "FAIL: weights differ"; exit 1; }
echo "weights.bin identical (bitwise)"
echo PASS
