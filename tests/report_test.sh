#!/usr/bin/env bash
# `mnist-train report` end to end (docs/report.md): two tiny seeded runs of
# one recipe, their report opened in chromium with the network blocked
# (tests/node/report_check.js: curves per run, the final figures against
# history.json, mean and sample spread, confusion matrices summing to the
# test count, a screenshot); a run whose class names are markup, shown as
# text; and the bad inputs, each one line and its exit code.
# Usage: report_test.sh MNIST_TRAIN OUT_DIR MNIST_DATA_DIR NODE_DIR
set -u
train=$1 out=$2 data=$3 node_dir=$4
node=${NODE:-node}
here=$(dirname "$0")
. "$here/lib.sh"
fail=0
rm -rf "$out" && mkdir -p "$out"

for seed in 1 2; do
  "$train" -q --epochs 2 --train-limit 1280 --test-limit 300 --seed "$seed" \
    --model-save-path "$out/seed$seed" --data-dir "$data" > "$out/train$seed.log" 2>&1
  check "run seed $seed trained" 0 $?
done

# Test images from each run's history.json (its data_dir), as a user would.
"$train" report "$out/seed1" "$out/seed2" --out "$out/report.html" --test-limit 300 --wrong 12 \
  > "$out/report.log" 2>&1
check "report of two runs" 0 $?
check "report line" 1 "$(has_match "$out/report.log" "Report of 2 runs written to $out/report.html \([0-9]+ KiB\)")"
check "no temporary file left" "" "$(ls -A "$out" | grep -F '.tmp.' || true)"
"$node" "$node_dir/report_check.js" --report "$out/report.html" --runs "$out/seed1,$out/seed2" \
  --test-count 300 --screenshot "$out/report.png" > "$out/check.log" 2>&1
check "report_check of two runs" 0 $?
cat "$out/check.log"

# Class names that are markup (as folder names may be): shown as text.
cp -r "$out/seed1" "$out/named"
names='["<b>zero</b>","one & two","\"quoted\"","<script>alert(3)</script>","4","five","6","7","8","nine\u00e9"]'
/usr/bin/python3 - "$out/named/model.json" "$names" <<'EOF'
import json, sys
path, names = sys.argv[1], json.loads(sys.argv[2])
doc = json.load(open(path))
doc["userDefinedMetadata"] = dict(doc.get("userDefinedMetadata") or {}, classNames=names)
json.dump(doc, open(path, "w"))
EOF
"$train" -q report "$out/named" --out "$out/named.html" --test-limit 100 --wrong 4 \
  > "$out/named.log" 2>&1
check "report of a run with markup names" 0 $?
"$node" "$node_dir/report_check.js" --report "$out/named.html" --runs "$out/named" \
  --test-count 100 --screenshot "$out/named.png" --names "$names" > "$out/named-check.log" 2>&1
check "report_check of markup names" 0 $?
cat "$out/named-check.log"

# A run of a flat folder of images split with --test-split: without
# --data-dir the report reads the folder history.json names, and of it the
# files the training held out for testing, not the whole folder.
/usr/bin/python3 "$here/../scripts/make_image_folders.py" --data-dir "$data" --workers 2 \
  --layout flat --limit-train 120 "$out/flat" > /dev/null
check "made a flat folder" 0 $?
"$train" -q --data-dir "$out/flat" --epochs 1 --test-split 0.25 --seed 4 --batch-size 32 \
  --cache-dir "$out/cache" --model-save-path "$out/flat_run" > "$out/flat_train.log" 2>&1
check "trained on the flat folder" 0 $?
"$train" -q report "$out/flat_run" --out "$out/flat.html" --cache-dir "$out/cache" --wrong 4 \
  > "$out/flat.log" 2>&1
check "report of the flat folder's run" 0 $?
check "its test images are the held-out files" \
  "$(/usr/bin/python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['data']['files']['test']))" "$out/flat_run/history.json")" \
  "$(grep -oE 'table class="confusion" data-count="[0-9]+"' "$out/flat.html" | grep -oE '[0-9]+')"

# Bad input: one line on stderr and the documented exit code.
expect() {  # expect WHAT CODE REGEX ARGS...
  local what=$1 code=$2 regex=$3
  shift 3
  if bash "$here/expect_error.sh" "$code" "$regex" "$train" "$@" > "$out/expect.log" 2>&1; then
    echo "ok   $what"
  else
    echo "FAIL $what"; cat "$out/expect.log"; fail=1
  fi
}
mkdir -p "$out/no_history" && cp "$out/seed1/model.json" "$out/seed1/weights.bin" "$out/no_history/"
expect "a run without history.json" 3 "no_history: holds no history.json" \
  report "$out/no_history" --out "$out/x.html"
expect "a folder without a model" 3 "empty: holds no model.json" \
  report "$out/seed1" "$(mkdir -p "$out/empty" && echo "$out/empty")" --out "$out/x.html"
expect "a missing run" 3 "missing: no such folder" report "$out/missing" --out "$out/x.html"
expect "runs of other classes" 2 \
  "named: its 10 classes \(<b>zero</b>, one & two, .*\) differ from .*seed1's 10 \(0, 1, 2, 3, 4, \.\.\.\)" \
  report "$out/seed1" "$out/named" --out "$out/x.html"
expect "missing test data" 3 "/nonexistent/mnist" \
  -q report "$out/seed1" --data-dir /nonexistent/mnist --out "$out/x.html"
/usr/bin/python3 - "$out/images" <<'EOF'
import os, sys
from PIL import Image
for c in ("a", "b"):
    os.makedirs(os.path.join(sys.argv[1], c), exist_ok=True)
    Image.new("L", (8, 8), 200).save(os.path.join(sys.argv[1], c, "x.png"))
EOF
expect "an image folder for an MNIST model" 2 "the model takes MNIST's 28x28 digits; .*images is a folder of images" \
  -q report "$out/seed1" --data-dir "$out/images" --out "$out/x.html"
expect "a report inside a file" 4 "seed1/weights.bin: cannot create the report's folder" \
  report "$out/seed1" --out "$out/seed1/weights.bin/r.html"
expect "a report that is a folder" 2 "--out $out/seed1: is a folder" report "$out/seed1" --out "$out/seed1"
expect "no runs" 2 "runs is required" report --out "$out/x.html"
expect "no --out" 2 "--out is required" report "$out/seed1"
expect "--wrong too large" 2 "--wrong: must be an integer of at most 1000" \
  report "$out/seed1" --wrong 5000 --out "$out/x.html"
check "no report written by a failure" 0 "$(ls "$out"/x.html 2>/dev/null | wc -l)"

[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
