#!/usr/bin/env bash
# Builds everything with clang, AddressSanitizer + UndefinedBehaviorSanitizer
# and the libFuzzer harnesses (build-asan/, -DMNIST_FUZZ=ON), then runs the
# unit and end-to-end tests there (the Node/browser ones aside: they check
# TF.js, not our memory; those labelled "long", whose code paths shorter
# tests cover; the packaging test, "install", which checks installed files
# and a .deb; and those labelled "python", which run Python only). Any
# sanitizer report fails the run. Run
# scripts/setup.sh --tests first (scripts/test.sh does).
# Without arguments the unit tests run as one process per core
# (scripts/unit_tests.sh): under ASan a start costs about 3 s.
# Usage: scripts/sanitize.sh [CTEST_ARGS...] (given, ctest runs with them)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${ASAN_BUILD_DIR:-$root/build-asan}
echo "==> building with ASan + UBSan + libFuzzer in $build_dir (clang)" >&2
CC=clang CXX=clang++ cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
  -DMNIST_FUZZ=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
# shellcheck source=scripts/sanitizer_env.sh
. "$root/scripts/sanitizer_env.sh"
cd "$build_dir"
if [ $# -gt 0 ]; then
  exec ctest --output-on-failure -j "$(nproc)" -LE "node|long|install|python" "$@"
fi
status=0
ctest --output-on-failure -j "$(nproc)" -LE "node|long|install|unit|python" || status=1
"$root/scripts/unit_tests.sh" "$build_dir" || status=1
exit "$status"
