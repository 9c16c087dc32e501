#!/usr/bin/env bash
# Runs the unit tests (BUILD_DIR/tests/mnist_tests, GoogleTest) as one
# process per core, GoogleTest's shards, instead of ctest's one process per
# test. Every start of a program that links Debian's libtorch costs about
# 1.3 s here (3 s under ASan): its static set-up of thousands of operators,
# and relocations against some 280 libraries. For 200 tests that start-up
# was nearly all of the unit tests' time, and under ASan most of the
# sanitizer step's. `ctest -L unit` still runs them one by one.
# Usage: scripts/unit_tests.sh BUILD_DIR [GTEST_FLAGS...]
# Exit status: 0 if every shard passed; 1 otherwise (their logs printed).
set -uo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [GTEST_FLAGS...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd) || exit 2
shift
bin=$build/tests/mnist_tests
[ -x "$bin" ] || { echo "unit_tests.sh: $bin is not built" >&2; exit 2; }
# Not nproc: GNU nproc prints $OMP_NUM_THREADS when that is set.
shards=$(getconf _NPROCESSORS_ONLN)
logs=$(mktemp -d "${TMPDIR:-/tmp}/unit_tests.XXXXXX")
start=$SECONDS
pids=()
cd "$build/tests" || exit 2   # ctest's working folder for them
for ((i = 0; i < shards; i++)); do
  GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i timeout 1800 "$bin" --gtest_brief=1 "$@" \
    > "$logs/shard$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for ((i = 0; i < shards; i++)); do
  if wait "${pids[$i]}"; then
    echo "unit tests, shard $((i + 1)) of $shards: $(grep -E '^\[==========\]' "$logs/shard$i.log" | tail -n 1 | cut -c14-)"
  else
    rc=$?
    failed=1
    cat "$logs/shard$i.log"
    echo "unit tests, shard $((i + 1)) of $shards: FAILED (exit $rc$([ "$rc" = 124 ] && echo ', timed out after 1800 s'))"
  fi
done
rm -rf "$logs"
echo "unit tests: $([ "$failed" = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
exit "$failed"
