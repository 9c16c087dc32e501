#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a trained model: installs what
# is missing, fetches MNIST, builds, then trains with mnist-node's defaults
# (20 epochs, batch 128) or the flags given, e.g.
#   scripts/train.sh --model-save-path /tmp/mnist
# (--dataset fashion-mnist also installs Debian's dataset-fashion-mnist).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
setup_args=()
case " $* " in
  *" --dataset fashion-mnist "* | *" --dataset=fashion-mnist "*) setup_args+=(--fashion-mnist) ;;
esac
"$root/scripts/setup.sh" "${setup_args[@]}"
exec "${BUILD_DIR:-$root/build}/mnist-train" "$@"
