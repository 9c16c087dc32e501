#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages), fetches and verifies MNIST,
# and builds mnist-train in Release. Safe to run again: it skips what is done.
# Usage: scripts/setup.sh [--tests]   (--tests also installs the Node test deps)
# Environment: BUILD_DIR (default: build), CMAKE_ARGS (extra cmake flags).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
with_tests=0
case "${1:-}" in
  --tests) with_tests=1 ;;
  "") ;;
  -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
  *) echo "setup.sh: unknown argument '$1' (expected --tests)" >&2; exit 2 ;;
esac

say() { echo "==> $*" >&2; }

# --- 1. Debian packages -------------------------------------------------------
packages=(libtorch-dev libopenblas0-pthread libcli11-dev nlohmann-json3-dev
          libspdlog-dev libgtest-dev zlib1g-dev libstb-dev cmake g++ make)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "setup.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
else
  say "Debian packages: all present"
fi

# --- 2. MNIST -----------------------------------------------------------------
"$root/scripts/download_mnist.sh"

# --- 3. Node test dependencies (pinned by tests/node/package-lock.json) -------
if [ "$with_tests" -eq 1 ]; then
  lock="$root/tests/node/package-lock.json"
  stamp="$root/tests/node/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
    say "installing Node test dependencies (npm ci)"
    (cd "$root/tests/node" && npm ci --no-audit --no-fund --loglevel=error)
  else
    say "Node test dependencies: present"
  fi
fi

# --- 4. Build -----------------------------------------------------------------
say "building in $build_dir (Release)"
# shellcheck disable=SC2086
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
