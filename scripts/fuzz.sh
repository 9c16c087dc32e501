#!/usr/bin/env bash
# Runs the libFuzzer harnesses of tests/fuzz (built by scripts/sanitize.sh in
# build-asan/) for a given time each, starting from tests/fuzz/corpus/<name>.
# New interesting inputs are kept in a scratch corpus; with --merge, the ones
# that add coverage are merged into tests/fuzz/corpus (commit them: ctest
# replays that corpus on every run). A crash leaves its input in
# build-asan/fuzz-findings/<name>/ and fails the script. Harnesses run one per
# core at a time.
# Usage: scripts/fuzz.sh [--seconds N] [--merge] [--build] [HARNESS...]
#   HARNESS: idx, model, serve_path, image (default: all); N defaults to 60.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${ASAN_BUILD_DIR:-$root/build-asan}
seconds=60 merge=0 build=0 harnesses=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --merge) merge=1; shift ;;
    --build) build=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    idx|model|serve_path|image) harnesses+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ "${#harnesses[@]}" -gt 0 ] || harnesses=(idx model serve_path image)
if [ "$build" -eq 1 ] || [ ! -x "$build_dir/tests/fuzz/fuzz_${harnesses[0]}" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
    -DMNIST_FUZZ=ON ${CMAKE_ARGS:-} >/dev/null
  cmake --build "$build_dir" -j "$(nproc)" --target "${harnesses[@]/#/fuzz_}"
fi
# shellcheck source=scripts/sanitizer_env.sh
. "$root/scripts/sanitizer_env.sh"
# No detect_stack_use_after_return here: over hundreds of thousands of
# inputs that throw, its fake stacks pile up and their collection stalled a
# harness for 20 s (a false "timeout" finding).
export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:check_initialization_order=1}
# The harnesses write each input to a file under $TMPDIR: keep that in memory.
[ -w /dev/shm ] && export TMPDIR=${TMPDIR:-/dev/shm}
# One harness per core at a time (each is single-threaded). Counted before
# OMP_NUM_THREADS is set: GNU nproc prints that variable's value.
jobs_max=$(nproc)
export OMP_NUM_THREADS=1
# fuzz_one HARNESS: one harness for $seconds s; its summary line goes to
# $build_dir/fuzz-HARNESS.result, its exit status is the harness's.
fuzz_one() {
  local h=$1 bin=$build_dir/tests/fuzz/fuzz_$1 seeds=$root/tests/fuzz/corpus/$1
  local work=$build_dir/fuzz-corpus/$1 findings=$build_dir/fuzz-findings/$1
  local log=$build_dir/fuzz-$1.log result runs speed last status=0
  mkdir -p "$work" "$findings"
  if "$bin" "$work" "$seeds" -max_total_time="$seconds" -max_len=262144 -timeout=10 \
       -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
       -artifact_prefix="$findings/" >"$log" 2>&1; then
    result=ok
  else
    result="FAILED (see $log; inputs in $findings)"
    status=1
  fi
  runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  speed=$(grep -oE '^stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' || true)
  echo "fuzz_$h: $result: $runs executions ($speed/s), $last" > "$build_dir/fuzz-$h.result"
  if [ "$merge" -eq 1 ] && [ "$result" = ok ]; then
    local before
    before=$(find "$seeds" -type f | wc -l)
    "$bin" -merge=1 -max_len=262144 "$seeds" "$work" >>"$log" 2>&1
    echo "fuzz_$h: corpus ${seeds#"$root"/}: $before -> $(find "$seeds" -type f | wc -l) files" \
      >> "$build_dir/fuzz-$h.result"
  fi
  return "$status"
}

status=0 running=0
for h in "${harnesses[@]}"; do
  if [ "$running" -ge "$jobs_max" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  echo "==> fuzz_$h for ${seconds}s (corpus $build_dir/fuzz-corpus/$h + tests/fuzz/corpus/$h)" >&2
  fuzz_one "$h" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
for h in "${harnesses[@]}"; do
  cat "$build_dir/fuzz-$h.result" >&2
done
exit "$status"
