#!/usr/bin/env bash
# Training images/s with and without --augment, alternated ROUNDS times in one
# run (other load on the machine hits both alike). Each run trains EPOCHS
# epochs; its figure is the median of its epochs' images/s (history.json's
# images_per_second: the training steps' wall time, augmentation waits
# included). Prints every run and each side's median over the runs.
# Usage: bench/augment_bench.sh DATA_DIR SPEC [ROUNDS] [EPOCHS] [TRAIN_LIMIT] [MORE FLAGS...]
# e.g. bench/augment_bench.sh data/mnist default 3 3 12800
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=$1 spec=$2 rounds=${3:-3} epochs=${4:-3} limit=${5:-12800}
shift $(( $# < 5 ? $# : 5 ))
train=${MNIST_TRAIN:-$root/build/mnist-train}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) cores; $epochs epochs of $limit images"
median() { /usr/bin/python3 -c 'import statistics,sys; print(round(statistics.median(float(x) for x in sys.argv[1:])))' "$@"; }
run() {  # run NAME [FLAGS...]: prints the run's median images/s
  local name=$1; shift
  "$train" --data-dir "$data" --epochs "$epochs" --train-limit "$limit" --test-limit 1000 \
    --seed 1 --model-save-path "$tmp/$name" "$@" > "$tmp/$name.txt" 2>&1 ||
    { cat "$tmp/$name.txt" >&2; exit 1; }
  /usr/bin/python3 -c '
import json, statistics, sys
h = json.load(open(sys.argv[1]))
print(round(statistics.median(e["images_per_second"] for e in h["epochs"])))' "$tmp/$name/history.json"
}
plain=() aug=()
for r in $(seq "$rounds"); do
  p=$(run plain "$@")
  a=$(run aug --augment "$spec" "$@")
  grep -m1 -oE 'augmentation: .*' "$tmp/aug.txt" | sed 's/^/  /'
  echo "round $r: without $p images/s, with --augment $a images/s"
  plain+=("$p") aug+=("$a")
done
mp=$(median "${plain[@]}") ma=$(median "${aug[@]}")
awk -v p="$mp" -v a="$ma" 'BEGIN {printf "median: without %d images/s, with --augment %d images/s: %+.1f%%\n", p, a, 100 * (a - p) / p}'
