#!/usr/bin/env bash
# The Keras-style callbacks on a short real run: ReduceLROnPlateau halves the
# rate after every epoch that does not improve val_loss by 10 (every one after
# the first, which improves on infinity),
# EarlyStopping (patience 2, min delta 10) ends the run after epoch 3 of 6,
# --save-best keeps the best epoch's model, --csv-log has one row per epoch.
# Usage: callbacks_test.sh MNIST_TRAIN DATA_DIR OUT_DIR
set -u
train=$1 data=$2 out=$3
rm -rf "$out" && mkdir -p "$out"
fail() { echo "FAIL: $*"; exit 1; }
"$train" --epochs 6 --train-limit 1200 --test-limit 200 --seed 3 --threads 2 --data-dir "$data" \
  --early-stopping-patience 2 --min-delta 10 --reduce-lr-patience 1 --reduce-lr-min-delta 10 \
  --reduce-lr-factor 0.5 --save-best --model-save-path "$out/model" --csv-log "$out/log.csv" \
  > "$out/run.txt" 2>&1 || { cat "$out/run.txt"; fail "training exited $?"; }
cat "$out/run.txt"
grep -q "Epoch 3/6 .* - lr: 0.0005$" "$out/run.txt" || fail "no lr on the epoch line"
grep -q "epoch 2: val_loss did not improve by more than 10 for 1 epoch(s): learning rate 0.001 -> 0.0005" \
  "$out/run.txt" || fail "no learning-rate reduction logged"
grep -q "early stopping after epoch 3: val_loss did not improve by more than 10 for 2 epoch(s)" \
  "$out/run.txt" || fail "no early stop logged"
grep -q "Epoch 4/6" "$out/run.txt" && fail "trained on after the early stop"
cat "$out/log.csv"
[ "$(head -1 "$out/log.csv")" = "epoch,acc,loss,lr,val_acc,val_loss" ] || fail "CSV header"
[ "$(cut -d, -f1,4 "$out/log.csv" | tail -n +2 | tr '\n' ' ')" = "0,0.001 1,0.001 2,0.0005 " ] ||
  fail "CSV rows (epoch, lr)"
python3 - "$out/model/history.json" <<'PY' || exit 1
import json, sys
h = json.load(open(sys.argv[1]))
cb = h["callbacks"]
assert len(h["epochs"]) == 3, len(h["epochs"])
assert cb["early_stopping"]["stopped_epoch"] == 3, cb
best = min(range(3), key=lambda i: h["epochs"][i]["val_loss"]) + 1
assert cb["saved_epoch"] == best, (cb, best)
assert [e["lr"] for e in h["epochs"]] == [0.001, 0.001, 0.0005]
print("history.json: 3 epochs, stopped after 3, best (saved) epoch", best)
PY
"$train" evaluate --model "$out/model" --data-dir "$data" --test-limit 200 > "$out/eval.txt" ||
  fail "the saved best model does not evaluate"
# The test figures printed after training are those of the saved (best) model.
[ "$(grep -A1 'Evaluation result' "$out/run.txt" | tail -1)" = "$(sed -n 2p "$out/eval.txt")" ] ||
  fail "the printed test figures are not the saved model's"
echo PASS
