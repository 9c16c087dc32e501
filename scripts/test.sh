#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a full test run: the same
# set-up as scripts/train.sh plus the Node/TF.js test dependencies, then every
# test (unit, end to end, real TF.js). Extra arguments go to ctest, e.g.
#   scripts/test.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" --tests
cd "${BUILD_DIR:-$root/build}"
exec ctest --output-on-failure -j "$(nproc)" "$@"
