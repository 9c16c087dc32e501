#!/usr/bin/env bash
# Ctrl-C (SIGINT) in the middle of an epoch, then --resume, must end with the
# same model, bit for bit, as an uninterrupted run (one thread, same seed),
# the same --csv-log rows and the same history (callback state included).
# Usage: [EPOCHS=N] [TRAIN_LIMIT=N] resume_test.sh MNIST_TRAIN DATA_DIR OUT_DIR [MORE TRAINING FLAGS...]
set -u
train=$1 data=$2 out=$3
shift 3
rm -rf "$out" && mkdir -p "$out"
args=(--threads 1 --epochs "${EPOCHS:-3}" --train-limit "${TRAIN_LIMIT:-3000}" --test-limit 500 --seed 5 --data-dir "$data" "$@")

"$train" "${args[@]}" --model-save-path "$out/straight" --csv-log "$out/straight.csv" \
  > "$out/straight.txt" 2>&1 || {
  cat "$out/straight.txt"; echo "FAIL: uninterrupted run"; exit 1; }

"$train" "${args[@]}" --checkpoint-dir "$out/ck" --model-save-path "$out/resumed" \
  --csv-log "$out/resumed.csv" > "$out/first.txt" 2>&1 &
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
if [[ " $* " != *" --save-best "* ]]; then
  [ ! -e "$out/resumed/weights.bin" ] || { echo "FAIL: an interrupted run saved a model"; exit 1; }
fi

"$train" "${args[@]}" --checkpoint-dir "$out/ck" --model-save-path "$out/resumed" --resume \
  --csv-log "$out/resumed.csv" > "$out/second.txt" 2>&1 || { cat "$out/second.txt"; echo "FAIL: resumed run"; exit 1; }
cat "$out/second.txt"
grep "resuming at" "$out/second.txt"
echo "uninterrupted: $(grep -A1 'Evaluation result' "$out/straight.txt" | tail -1)"
echo "resumed:       $(grep -A1 'Evaluation result' "$out/second.txt" | tail -1)"
cmp "$out/straight/weights.bin" "$out/resumed/weights.bin" || {
  echo "FAIL: weights differ"; exit 1; }
echo "weights.bin identical (bitwise)"
cmp "$out/straight.csv" "$out/resumed.csv" || {
  diff "$out/straight.csv" "$out/resumed.csv"; echo "FAIL: CSV logs differ"; exit 1; }
echo "CSV logs identical: $(($(wc -l < "$out/straight.csv") - 1)) rows"
python3 - "$out/straight/history.json" "$out/resumed/history.json" <<'PY' || exit 1
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
keys = ("epoch", "loss", "acc", "val_loss", "val_acc", "lr")
fig = lambda h: [[e[k] for k in keys] for e in h["epochs"]]
if fig(a) != fig(b) or a.get("callbacks") != b.get("callbacks") or a["test"] != b["test"]:
    sys.exit("FAIL: history.json differs (epochs, callbacks or test)")
print("history.json: same epochs, test figures and callbacks", json.dumps(a.get("callbacks")))
PY
echo PASS
