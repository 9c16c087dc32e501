#!/usr/bin/env bash
# A soak of `mnist-train serve` (outside CI; 30 minutes by default): mixed
# loopback load (tests/soak_load.py: page fetchers, model.json and weights,
# hostile requests, slow clients) and two real TF.js clients loading the
# model in a loop (node/versions_client.js), while the model is replaced
# every 2 s (three models in turn, as mnist-train saves). The server's RSS,
# open file descriptors and threads are sampled every 30 s into
# OUT/samples.csv. Passes with no 5xx, no mismatched or failed model load,
# the server alive, and RSS and file descriptors flat: the largest RSS of
# the last third within 25% + 16 MB of the first third's, and descriptors,
# quiet at the end, at most 48 above the fewest of the first third (16 kept
# versions, idle connections).
# Usage: serve_soak.sh MNIST_TRAIN MNIST_FIXTURE NODE_DIR [SECONDS] [OUT]
set -u
bin=$1 fixture=$2 node_dir=$3 seconds=${4:-1800}
out=${5:-$(mktemp -d)}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
rm -rf "$out/v" "$out/served" "$out/stop"
pids=()
cleanup() {
  touch "$out/stop"
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT
fail=0
. "$(dirname "$0")/lib.sh"

"$fixture" versions "$out/v" || exit 1
mkdir -p "$out/served"
cp "$out/v/A/model.json" "$out/v/A/weights.bin" "$out/served/"
"$bin" serve --model "$out/served" --port 0 >"$out/serve.out" 2>"$out/serve.err" &
serve_pid=$!
pids+=("$serve_pid")
url=$(wait_for_url "$out/serve.out")
[ -n "$url" ] || { echo "FAIL: serve printed no URL"; cat "$out/serve.err"; exit 1; }
echo "serving $url (pid $serve_pid) for $seconds s; figures in $out"

sample() {  # sample LABEL: a line of samples.csv
  local rss threads fds
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$serve_pid/status" 2>/dev/null)
  threads=$(awk '/^Threads/ {print $2}' "/proc/$serve_pid/status" 2>/dev/null)
  fds=$(ls "/proc/$serve_pid/fd" 2>/dev/null | wc -l)
  echo "$(date +%s),$1,${rss:-0},$fds,${threads:-0}" >>"$out/samples.csv"
  echo "$1,${rss:-0},$fds,${threads:-0}"
}
echo "time,label,rss_kb,fds,threads" >"$out/samples.csv"
sample start >/dev/null

python3 "$here/soak_load.py" "$url" "$out/stop" >"$out/load.json" 2>"$out/load.err" &
load_pid=$!
pids+=("$load_pid")
clients=()
for c in 1 2; do
  "${NODE:-node}" "$node_dir/versions_client.js" "$url" "$out/v/expected.json" "$out/stop" \
    >"$out/client$c.json" 2>"$out/client$c.err" &
  clients+=($!)
  pids+=($!)
done
# One save every 2 s or so, done before the load stops.
replacements=$(( (seconds - 20) / 2 ))
"$fixture" replace "$out/served" "$replacements" 1970 "$out/v/B" "$out/v/C" "$out/v/A" \
  >"$out/replace.out" 2>&1 &
replace_pid=$!
pids+=("$replace_pid")

start=$(date +%s)
while [ $(($(date +%s) - start)) -lt "$seconds" ]; do
  left=$((seconds - ($(date +%s) - start)))
  sleep $((left < 30 ? left : 30))
  kill -0 "$serve_pid" 2>/dev/null || { echo "FAIL: serve died"; fail=1; break; }
  echo "  $(( $(date +%s) - start )) s: $(sample load)"
done
wait "$replace_pid" || { echo "FAIL: the replacing loop failed"; fail=1; }
touch "$out/stop"
wait "$load_pid" "${clients[@]}"
echo "load stopped after $(( $(date +%s) - start )) s"
sleep 15  # idle connections closed, idle threads retired
end=$(sample "quiet end")
echo "replacements: $(cat "$out/replace.out")"
echo "load: $(cat "$out/load.json")"
for c in 1 2; do echo "client $c: $(cat "$out/client$c.json")"; done
echo "samples (rss kB, fds, threads):"
cut -d, -f2- "$out/samples.csv" | sed 's/^/  /'

# Flat: the largest RSS of the last third of the soak against that of the
# first third (both under load); descriptors quiet at the end against the
# fewest under load in the first third.
early=$(awk -F, -v n="$(grep -c ',load,' "$out/samples.csv")" '$2 == "load" {i++; if (i <= (n < 3 ? 1 : n / 3)) print}' "$out/samples.csv")
late=$(awk -F, -v n="$(grep -c ',load,' "$out/samples.csv")" '$2 == "load" {i++; if (i > n - (n < 3 ? 1 : n / 3)) print}' "$out/samples.csv")
early_rss=$(echo "$early" | cut -d, -f3 | sort -n | tail -1)
late_rss=$(echo "$late" | cut -d, -f3 | sort -n | tail -1)
early_fds=$(echo "$early" | cut -d, -f4 | sort -n | head -1)
end_fds=$(echo "$end" | cut -d, -f3)
echo "RSS: at most ${early_rss} kB in the first third, ${late_rss} kB in the last;" \
  "fds: at least ${early_fds} in the first third under load, ${end_fds} quiet at the end"
check "RSS flat" "yes" "$( [ "${late_rss:-0}" -le $(( ${early_rss:-0} * 5 / 4 + 16384 )) ] && echo yes || echo no)"
check "fds flat" "yes" "$( [ "${end_fds:-999}" -le $(( ${early_fds:-0} + 48 )) ] && echo yes || echo no)"
field() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
check "5xx from the mixed load" 0 "$(field "$out/load.json" "r['5xx']")"
for c in 1 2; do
  check "client $c mismatches" 0 "$(field "$out/client$c.json" "r['mismatches']")"
  check "client $c failed loads" 0 "$(field "$out/client$c.json" "r['failures']")"
  check "client $c 5xx" 0 "$(field "$out/client$c.json" "sum(v for k, v in r['statuses'].items() if k.startswith('5'))")"
done
kill -0 "$serve_pid" 2>/dev/null || { echo "FAIL: serve died"; fail=1; }
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
