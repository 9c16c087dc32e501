#!/usr/bin/env bash
# `serve` never mixes two versions of a model: the served folder is replaced
# REPLACEMENTS times (three models in turn, two of one topology and one of
# another, each saved as mnist-train saves) while two real TF.js clients
# (node/versions_client.js) load it over HTTP in a loop and check each
# load's predictions against the version its model.json names.
# Passes with at least REPLACEMENTS replacements, loads of all three
# versions, and no mismatch, failed load or 5xx.
# Usage: serve_versions.sh MNIST_TRAIN MNIST_FIXTURE NODE_DIR [REPLACEMENTS]
set -u
bin=$1 fixture=$2 node_dir=$3 replacements=${4:-240}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail=0
. "$(dirname "$0")/lib.sh"

"$fixture" versions "$work/v" || exit 1
mkdir -p "$work/served"
cp "$work/v/A/model.json" "$work/v/A/weights.bin" "$work/served/"
"$bin" serve --model "$work/served" --port 0 --sample 0 >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
pids+=("$serve_pid")
url=$(wait_for_url "$work/serve.out")
[ -n "$url" ] || { echo "FAIL: serve printed no URL"; cat "$work/serve.err"; exit 1; }

for c in 1 2; do
  "${NODE:-node}" "$node_dir/versions_client.js" "$url" "$work/v/expected.json" "$work/stop" \
    >"$work/client$c.json" 2>"$work/client$c.err" &
  pids+=($!)
done
sleep 2  # the clients' first loads, of version A
start=$(date +%s.%N)
"$fixture" replace "$work/served" "$replacements" 20 "$work/v/B" "$work/v/C" "$work/v/A" \
  || { echo "FAIL: the replacing loop failed"; fail=1; }
sleep 1
touch "$work/stop"
for c in 1 2; do wait "${pids[$c]}"; done
echo "$replacements replacements in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

for c in 1 2; do
  echo "client $c: $(cat "$work/client$c.json")"
  report=$(cat "$work/client$c.json")
  field() { echo "$report" | python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }
  check "client $c mismatches" 0 "$(field "r['mismatches']")"
  check "client $c failed loads" 0 "$(field "r['failures']")"
  check "client $c 5xx responses" 0 "$(field "sum(v for k, v in r['statuses'].items() if k.startswith('5'))")"
  check "client $c loaded all three versions" "A B C" "$(field "' '.join(sorted(r['byVersion']))")"
done
kill -0 "$serve_pid" 2>/dev/null || { echo "FAIL: serve died"; fail=1; }
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
