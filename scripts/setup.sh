#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages), fetches and verifies MNIST,
# and builds mnist-train in Release. Safe to run again: it skips what is done.
# Usage: scripts/setup.sh [--tests] [--fashion-mnist]
#   --tests          also installs the Node test deps, chromium, ab, clang and
#                    clang-format for the tests, and builds the test programs too
#   --fashion-mnist  also installs Debian's dataset-fashion-mnist (30 MB, for
#                    mnist-train --dataset fashion-mnist)
# Environment: BUILD_DIR (default: build), CMAKE_ARGS (extra cmake flags).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
with_tests=0
with_fashion=0
for arg in "$@"; do
  case "$arg" in
    --tests) with_tests=1 ;;
    --fashion-mnist) with_fashion=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (expected --tests or --fashion-mnist)" >&2; exit 2 ;;
  esac
done

say() { echo "==> $*" >&2; }

# --- 1. Debian packages -------------------------------------------------------
# libdnnl-dev: the headers of oneDNN, which libtorch already uses, for the
# convolutions it calls directly (src/onednn_conv.cpp).
# libonnx-dev: ONNX's protobuf classes and checker, for convert --to onnx.
packages=(libtorch-dev libopenblas0-pthread libdnnl-dev libcli11-dev nlohmann-json3-dev
          libspdlog-dev libgtest-dev zlib1g-dev libspng-dev libturbojpeg0-dev libcpp-httplib-dev
          libonnx-dev pkg-config cmake g++ make)
# libprotobuf-dev, protobuf-compiler: --tensorboard-dir's Event protos (proto/tensorboard/).
packages+=(libprotobuf-dev protobuf-compiler)
# The serve tests: a real browser (driven by playwright-core) and ab.
if [ "$with_tests" -eq 1 ]; then
  # clang + compiler-rt (libFuzzer, ASan/UBSan runtimes) and llvm-14's
  # llvm-symbolizer for the hardening builds (scripts/sanitize.sh, fuzz.sh).
  # python3-pil, python3-numpy: scripts/make_image_folders.py writes MNIST as the
  # folders of PNG and JPEG files users bring (the folder-dataset tests).
  # python3-onnx: onnx.checker on the exported ONNX models (tests/onnx_test.sh).
  packages+=(chromium apache2-utils wrk curl clang libclang-rt-14-dev llvm-14 clang-format-14
             dpkg-dev file python3-pil python3-numpy python3-onnx)
  # python3-protobuf: tests/tensorboard_test.sh decodes the event files in Python.
  packages+=(python3-protobuf)
fi
[ "$with_fashion" -eq 1 ] && packages+=(dataset-fashion-mnist)
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

# --- 3. Node packages, pinned by their package-lock.json (npm ci) -------------
# web/: TF.js and tfjs-vis for the page `mnist-train serve` shows (always).
# tests/node/: TF.js, playwright-core and onnxruntime-node for the tests
# (--tests). Playwright never downloads a browser: the tests drive Debian's
# chromium. onnxruntime-node's CPU binaries are inside its npm package; its
# install script would fetch CUDA ones from outside npm, which
# ONNXRUNTIME_NODE_INSTALL_CUDA=skip tells it not to (its script/install.js).
npm_ci() {  # npm_ci DIR WHAT
  local lock="$1/package-lock.json" stamp="$1/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
    say "installing $2 (npm ci in ${1#"$root"/})"
    (cd "$1" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 ONNXRUNTIME_NODE_INSTALL_CUDA=skip \
       npm ci --no-audit --no-fund --loglevel=error)
  else
    say "$2: present"
  fi
}
npm_ci "$root/web" "the page's TF.js and tfjs-vis"
if [ "$with_tests" -eq 1 ]; then
  npm_ci "$root/tests/node" "Node test dependencies"
fi

# --- 4. Build -----------------------------------------------------------------
# Training needs only the mnist-train target (a few minutes less than the test
# suite's binaries); --tests builds everything.
targets=(--target mnist-train)
[ "$with_tests" -eq 1 ] && targets=()
say "building ${targets[*]:-everything} in $build_dir (Release)"
# shellcheck disable=SC2086
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"
