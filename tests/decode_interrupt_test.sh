#!/usr/bin/env bash
# Stopping a run while it decodes a folder (tests/make_linked_folder.py:
# large noisy PNGs, hard-linked, so that decoding takes seconds):
# 1. SIGINT (Ctrl-C): the run gives up before decoding every file, says so,
#    exits 130 (docs/reliability.md, "Exit codes"), and leaves no temporary cache file;
#    the next run decodes every file and trains.
# 2. SIGKILL: the temporary file stays; the next run removes it, decodes
#    and trains.
# Prints how long each stop took from the signal to the exit.
# Usage: decode_interrupt_test.sh MNIST_TRAIN OUT_DIR [FILES]
set -u
train=$1 out=$2 files=${3:-3000}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib.sh"
fail=0
rm -rf "$out" && mkdir -p "$out"
python3 "$root/tests/make_linked_folder.py" "$out/data" --files "$files" --side 256 --noise \
  --distinct 2 > /dev/null || { echo "FAIL: make_linked_folder.py"; exit 1; }
cache=$out/cache
args=(--data-dir "$out/data" --cache-dir "$cache" --image-size 32,32 --epochs 1
  --train-limit 256 --test-split 0.1 --test-limit 128 --batch-size 64 --seed 2)

# start_decoding LOG: starts a run in the background (its pid in $pid) and
# waits until its temporary cache file exists: it is decoding.
start_decoding() {
  "$train" "${args[@]}" > "$1" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    [ -n "$(find "$cache" -name ".*.tmp.$pid" 2>/dev/null)" ] && return 0
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.05
  done
  echo "FAIL: run $pid never began decoding"
  fail=1
  return 1
}
# stop SIGNAL: sends it to $pid and waits for the exit (up to 60 s, then
# kills it: a run that does not stop fails the test, never hangs it); the
# exit status in $status.
stop() {
  sleep 0.3
  local sent
  sent=$(date +%s%N)
  kill "-$1" "$pid"
  for _ in $(seq 600); do
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2> /dev/null; then
    echo "FAIL: $1: run $pid did not stop"
    fail=1
    kill -KILL "$pid"
  fi
  wait "$pid"
  status=$?
  echo "SIG$1: stopped $(awk -v a="$sent" -v b="$(date +%s%N)" 'BEGIN {printf "%.2f", (b - a) / 1e9}') s after the signal"
}

# 1. Ctrl-C.
start_decoding "$out/int.txt" && stop INT
check "SIGINT while decoding: exit" 130 "$status"
check "it says it stopped before the end" 1 \
  "$(has_match "$out/int.txt" "$out/data: stopped while decoding its images \([0-9]+ of $files done\); nothing was cached")"
grep -oE "\([0-9]+ of $files done\)" "$out/int.txt"
check "not every file decoded" 0 "$(has_text "$out/int.txt" "($files of $files done)")"
check "no temporary file left" 0 "$(find "$cache" -name '.*.tmp.*' | wc -l)"
check "no cache written" 0 "$(find "$cache" -name '*.u8' | wc -l)"
"$train" "${args[@]}" --model-save-path "$out/m1" > "$out/after_int.txt" 2>&1
check "the next run: exit" 0 $?
check "the next run decodes every file" 1 \
  "$(has_match "$out/after_int.txt" "images: 32x32 grayscale, $files decoded in ")"

# 2. SIGKILL: the leftover is removed by the next run that writes a cache.
rm -rf "$cache"
start_decoding "$out/kill.txt" && stop KILL
check "SIGKILL while decoding: killed" 137 "$status"
check "its temporary file stays" 1 "$(find "$cache" -name ".*.tmp.$pid" | wc -l)"
"$train" "${args[@]}" --model-save-path "$out/m2" > "$out/after_kill.txt" 2>&1
check "the next run: exit" 0 $?
check "the next run decodes every file" 1 \
  "$(has_match "$out/after_kill.txt" "images: 32x32 grayscale, $files decoded in ")"
check "the killed run's temporary file is gone" 0 "$(find "$cache" -name '.*.tmp.*' | wc -l)"
check "one cache file" 1 "$(find "$cache" -name '*.u8' | wc -l)"
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
