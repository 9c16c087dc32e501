#!/usr/bin/env bash
# Decoding a folder of images into memory: mnist-train's cache (TurboJPEG /
# libspng on N threads, Keras's resize, written to a fresh cache file) against
# Python's usual way (bench/pil_decode_bench.py: PIL's decode, convert and
# bilinear resize, as torchvision's ImageFolder loads, on N processes), the two
# alternated ROUNDS times in one run. Prints each round and the best of each.
# Usage: bench/decode_bench.sh DIR H,W grayscale|rgb [ROUNDS] [THREADS]
# (make DIR with scripts/make_image_folders.py; THREADS default: the cores).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$1 size=$2 color=$3 rounds=${4:-3} threads=${5:-$(nproc)}
train=${MNIST_TRAIN:-$root/build/mnist-train}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) (family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), model $(grep -m1 '^model' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')), $threads threads/processes each"
best_ours=0 best_pil=0
for r in $(seq "$rounds"); do
  rm -rf "$tmp/cache"
  # The log's "N decoded in S s" is decode_image_files' own clock: the
  # cache key, every file read, decoded, resized and written to the cache.
  "$train" --data-dir "$dir" --image-size "$size" --color-mode "$color" --cache-dir "$tmp/cache" \
    --threads "$threads" --epochs 1 --train-limit 1 --test-limit 1 --validation-split 0 \
    > "$tmp/ours.txt" 2>&1
  line=$(grep -oE '[0-9]+ decoded in [0-9.]+ s' "$tmp/ours.txt")
  ours=$(awk '{printf "%.0f", $1 / $4}' <<< "$line")
  pil=$(/usr/bin/python3 "$root/bench/pil_decode_bench.py" "$dir" --size "$size" --color "$color" \
    --workers "$threads" --repeat 1 | /usr/bin/python3 -c 'import json,sys; print(round(json.load(sys.stdin)["images_per_second"]))')
  echo "round $r: mnist-train $ours images/s ($line); PIL $pil images/s"
  [ "$ours" -gt "$best_ours" ] && best_ours=$ours
  [ "$pil" -gt "$best_pil" ] && best_pil=$pil
done
awk -v a="$best_ours" -v b="$best_pil" \
  'BEGIN {printf "best: mnist-train %d images/s, PIL %d images/s: %.2fx\n", a, b, a / b}'
