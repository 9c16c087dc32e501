#!/usr/bin/env bash
# --lr-schedule end to end: cosine with a warmup, interrupted mid-epoch (Ctrl-C)
# and resumed, ends with the weights, CSV rows and history of an unbroken run
# (tests/resume_test.sh), and the rates that the log, the CSV and history.json
# show per epoch are Keras's CosineDecay at the steps done; one-cycle's end is
# fastai's lr_max / div_final.
# Usage: lr_schedule_test.sh MNIST_TRAIN DATA_DIR OUT_DIR
set -u
train=$1 data=$2 out=$3
here=$(dirname "$0")
rm -rf "$out" && mkdir -p "$out"

# 1500 records: 1275 train after the 15% validation split, 10 steps of 128 an
# epoch; 3 epochs: a warmup over steps 0-9, then a decay over 20 steps.
EPOCHS=3 TRAIN_LIMIT=1500 bash "$here/resume_test.sh" "$train" "$data" "$out/resume" \
  --lr-schedule cosine --warmup-epochs 1 --lr-alpha 0.1 > "$out/resume.txt" 2>&1
rc=$?
cat "$out/resume.txt"
[ "$rc" -eq 0 ] && grep -q '^PASS$' "$out/resume.txt" || { echo "FAIL: resume with a schedule"; exit 1; }
plan="learning rate: cosine decay from 0.001 to 0.0001 over 20 steps after a linear warmup from 0 over 10 steps (1 epoch)"
grep -qF "$plan" "$out/resume/straight.txt" || { echo "FAIL: the plan is not logged: $plan"; exit 1; }
grep -q "Epoch 3/3 .* - lr: 0.0001$" "$out/resume/straight.txt" || {
  echo "FAIL: the epoch's log line shows no rate"; exit 1; }

# One cycle over 2 epochs of 600 records: 510 train, 4 steps an epoch, 8 in all.
"$train" --threads 1 --epochs 2 --train-limit 600 --test-limit 100 --seed 3 --data-dir "$data" \
  --optimizer adam --learning-rate 0.004 --lr-schedule onecycle --csv-log "$out/onecycle.csv" \
  --model-save-path "$out/onecycle" > "$out/onecycle.txt" 2>&1 || {
  cat "$out/onecycle.txt"; echo "FAIL: one-cycle run"; exit 1; }

/usr/bin/python3 - "$out" <<'PY' || exit 1
import csv, json, math, sys
out = sys.argv[1]

def cosine(s, rate=0.001, alpha=0.1, warmup=10, decay=20):
    # Keras 3's CosineDecay(0, decay, alpha, warmup_target=rate, warmup_steps=warmup)
    s = min(s, decay + warmup)
    if s < warmup:
        return rate * s / warmup
    return rate * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * (s - warmup) / decay)) + alpha)

def onecycle(s, lr_max=0.004, total=8, pct=0.25, div=25, div_final=1e5):
    # fastai's combined_cos(pct, lr_max/div, lr_max, lr_max/div_final) at s/total
    cos = lambda a, b, p: a + (1 + math.cos(math.pi * (1 - p))) * (b - a) / 2
    pos = s / total
    if pos < pct:
        return cos(lr_max / div, lr_max, pos / pct)
    return cos(lr_max, lr_max / div_final, (pos - pct) / (1 - pct))

def check(name, got, want):
    if len(got) != len(want) or any(abs(g - w) > 1e-12 * max(1, abs(w)) for g, w in zip(got, want)):
        sys.exit(f"FAIL: {name}: rates {got}, expected {want}")
    print(f"{name}: {got}")

want = [cosine(10 * e) for e in (1, 2, 3)]  # the rate after each epoch's last step
for run in ("straight", "resumed"):
    check(f"{run}.csv lr", [float(r["lr"]) for r in csv.DictReader(open(f"{out}/resume/{run}.csv"))], want)
    h = json.load(open(f"{out}/resume/{run}/history.json"))
    check(f"{run} history.json lr", [e["lr"] for e in h["epochs"]], want)
if h["settings"]["lr_schedule"]["kind"] != "cosine" or h["settings"]["lr_schedule"]["warmup_epochs"] != 1:
    sys.exit(f"FAIL: history.json's settings: {h['settings']['lr_schedule']}")
want = [onecycle(4), onecycle(8)]
check("onecycle.csv lr", [float(r["lr"]) for r in csv.DictReader(open(f"{out}/onecycle.csv"))], want)
if abs(want[-1] - 0.004 / 1e5) > 1e-9 * 0.004 / 1e5:
    sys.exit("FAIL: one cycle does not end at lr_max / div_final")
PY
echo PASS
