#!/usr/bin/env bash
# Makes docs/report-screenshot.png (docs/report.md): three seeds of one short
# MNIST recipe, their report, opened by tests/node/report_check.js (chromium,
# network blocked, the page checked against the runs' history.json) and
# screenshotted at the top of the page (the runs compared and their curves).
# Usage: scripts/report_screenshot.sh [BUILD_DIR] (default: build)
# Environment: EPOCHS (3), TRAIN_LIMIT (6000), TEST_LIMIT (2000), SEEDS
# ("1 2 3"), WORK (a temporary folder, removed unless given; runs already
# there, with their history.json, are reused).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
train=$build/mnist-train
data=${MNIST_DATA_DIR:-$root/data/mnist}
epochs=${EPOCHS:-3}
limit=${TRAIN_LIMIT:-6000}
test_limit=${TEST_LIMIT:-2000}
seeds=${SEEDS:-1 2 3}
if [ -n "${WORK:-}" ]; then
  work=$WORK
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
# Trained and reported from $work with relative names (seed1, mnist), so
# that the page names no folder of this machine.
ln -sfn "$data" "$work/mnist"
cd "$work"
runs=()
for seed in $seeds; do
  runs+=("seed$seed")
  [ -s "seed$seed/history.json" ] && continue
  echo "training seed $seed: $epochs epochs of $limit images"
  "$train" -q --epochs "$epochs" --train-limit "$limit" --test-limit "$test_limit" --seed "$seed" \
    --model-save-path "seed$seed" --data-dir mnist
done
"$train" report "${runs[@]}" --out report.html --test-limit "$test_limit"
node "$root/tests/node/report_check.js" --report report.html \
  --runs "$(IFS=,; echo "${runs[*]}")" --test-count "$test_limit" \
  --screenshot "$root/docs/report-screenshot.png" --clip-height 2350
echo "wrote $root/docs/report-screenshot.png"
