#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored through .git/info/exclude) for bench/gpu_run.sh
# on a GPU machine that has PyTorch but no network: the Debian packages it
# lacks, unpacked (header-only libraries, spdlog/fmt, GoogleTest, zlib), and
# MNIST gzip-compressed to fit the transfer limit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/debs .gpu/root .gpu/mnist
(cd .gpu/debs && apt-get download libcli11-dev nlohmann-json3-dev libspdlog-dev \
  libspdlog1.10 libfmt-dev libfmt9 libgtest-dev zlib1g-dev zlib1g libspng-dev libspng0 \
  libcpp-httplib-dev libcpp-httplib0.11 libbrotli1 libbrotli-dev libssl-dev libssl3)
for f in .gpu/debs/*.deb; do dpkg -x "$f" .gpu/root; done
rm -rf .gpu/debs
scripts/download_mnist.sh
for f in data/mnist/*-ubyte; do gzip -1 -c "$f" > ".gpu/mnist/$(basename "$f").gz"; done
du -sh .gpu
