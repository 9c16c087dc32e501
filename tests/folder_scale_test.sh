#!/usr/bin/env bash
# 100,000 image files (tests/make_linked_folder.py: hard links to six small
# PNGs, two classes, and 30 files that are not images): indexed, decoded and
# trained on for one short epoch, with at most 64 files open (ulimit -n: the
# decoding holds one image open per thread, so a leak of one per file would
# fail within the first hundred); the bad images listed as 20 and a count;
# history.json's data record of every file's subset; the second run from
# the cache. Prints the seconds of each phase and history.json's size.
# Usage: folder_scale_test.sh MNIST_TRAIN OUT_DIR [FILES]
set -u
train=$1 out=$2 files=${3:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib.sh"
fail=0
seconds_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}'; }
rm -rf "$out" && mkdir -p "$out"
start=$(date +%s%N)
python3 "$root/tests/make_linked_folder.py" "$out/data" --files "$files" --side 16 --broken 30 ||
  { echo "FAIL: make_linked_folder.py"; exit 1; }
echo "folder made in $(seconds_since "$start") s"
total=$((files / 2 * 2 + 30))
run() {
  (ulimit -n 64 && exec "$train" --data-dir "$out/data" --cache-dir "$out/cache" --epochs 1 \
    --train-limit 512 --test-limit 256 --test-split 0.01 --validation-split 0.01 \
    --batch-size 64 --seed 5 --skip-bad-images "$@")
}

start=$(date +%s%N)
run --model-save-path "$out/model" > "$out/run1.txt" 2>&1
check "first run: exit" 0 $?
echo "first run (index, decode, one epoch) in $(seconds_since "$start") s"
check "every file indexed" 1 "$(has_text "$out/run1.txt" "$out/data: 2 classes (class_0, class_1), $total image files")"
check "every file decoded" 1 "$(has_match "$out/run1.txt" "images: 16x16 grayscale, $total decoded in [0-9.]+ s; cached in ")"
grep -oE "$total decoded in [0-9.]+ s" "$out/run1.txt"
check "the bad images: 20 listed" 20 "$(grep -cE '^  class_0/broken_[0-9]{3}\.png: ' "$out/run1.txt")"
check "and a count of the rest" 1 "$(has_text "$out/run1.txt" "  ... and 10 more")"
check "the count of bad images" 1 "$(has_text "$out/run1.txt" "$out/data: 30 of its $total image files cannot be used:")"
check "data line" 1 "$(has_match "$out/run1.txt" "data: 512 training, [0-9]+ validation, 256 test images from $out/data")"
check "one epoch trained" 1 "$(has_match "$out/run1.txt" "Epoch 1/1 - .* - loss: [0-9.]+ - acc: [0-9.]+ - val_loss: ")"
check "and tested" 1 "$(has_text "$out/run1.txt" "Evaluation result:")"
history=$out/model/history.json
echo "history.json: $(wc -c < "$history") bytes"
check "history.json: the training and test files, every bad image" "512 256 30" \
  "$(python3 -c "
import json; d = json.load(open('$history'))['data']
print(len(d['files']['train']), len(d['files']['test']), len(d['bad_images']))")"
check "nothing left in the cache folder but the cache" 1 "$(find "$out/cache" -type f | wc -l)"

start=$(date +%s%N)
run > "$out/run2.txt" 2>&1
check "second run: exit" 0 $?
echo "second run (index, the cache, one epoch) in $(seconds_since "$start") s"
check "second run reads the cache" 1 "$(has_match "$out/run2.txt" "images: 16x16 grayscale, read from the cache ")"
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
