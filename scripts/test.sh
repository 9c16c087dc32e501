#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a full test run: the same
# set-up as scripts/train.sh plus the test dependencies, then
#   0. the C++ files' format (scripts/check_format.sh, clang-format 14);
#   1. every test of the Release build (end to end, real TF.js, browser
#      through ctest; the unit tests as one process per core,
#      scripts/unit_tests.sh);
#   2. the unit and end-to-end tests again under ASan + UBSan (clang,
#      build-asan/: scripts/sanitize.sh);
#   3. each libFuzzer harness for FUZZ_SECONDS (default 30) s (scripts/fuzz.sh;
#      longer runs: scripts/fuzz.sh --seconds 600 HARNESS).
# Extra arguments run only step 1, with them passed to ctest, e.g.
#   scripts/test.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" --tests
# Tests run two at a time on two cores: OpenMP threads that spin while they
# wait would steal the other test's cores (two ASan training runs: 27 s
# spinning, 16 s passive).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
cd "${BUILD_DIR:-$root/build}"
if [ $# -gt 0 ]; then
  exec ctest --output-on-failure -j "$(nproc)" "$@"
fi
failed=()
step() { echo; echo "==> $1" >&2; }
step "format (clang-format 14)"
"$root/scripts/check_format.sh" || failed+=("format")
step "tests (Release build)"
ctest --output-on-failure -j "$(nproc)" -LE unit || failed+=("tests")
step "unit tests (Release build), one process per core"
"$root/scripts/unit_tests.sh" . || failed+=("unit tests")
step "tests under ASan + UBSan"
"$root/scripts/sanitize.sh" || failed+=("sanitizers")
step "fuzzing, ${FUZZ_SECONDS:-30} s per harness"
"$root/scripts/fuzz.sh" --seconds "${FUZZ_SECONDS:-30}" || failed+=("fuzzing")
if [ "${#failed[@]}" -gt 0 ]; then
  echo "test.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: all passed" >&2
