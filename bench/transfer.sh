#!/usr/bin/env bash
# The transfer-learning walk-through of docs/training.md (tfjs-examples'
# mnist-transfer-cnn, from the command line), measured on the full MNIST:
#   1. a base convnet (mnist-node's) trained on digits 0-4, BASE_EPOCHS epochs;
#   2. transferred to 5-9: a new 5-unit head (--replace-head), the four
#      convolutions and their pooling frozen (--freeze-up-to 5);
#   3. the same convnet trained from scratch on 5-9.
# For 2 and 3: test accuracy on the 5-9 test images after 1, 2 and 5 epochs
# (a run of that many epochs each, same seed) and the seconds per epoch.
# Prints a Markdown table; the models and logs stay in OUT.
# Usage: bench/transfer.sh [MNIST_TRAIN=build/mnist-train] [OUT=/tmp/mnist-transfer]
#   env: BASE_EPOCHS (default 5), SEED (default 1), DATA_DIR (default data/mnist)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
train=${1:-$root/build/mnist-train}
out=${2:-/tmp/mnist-transfer}
base_epochs=${BASE_EPOCHS:-5} seed=${SEED:-1} data=${DATA_DIR:-$root/data/mnist}
mkdir -p "$out"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
isa=$(grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "CPU: $cpu, $(nproc) cores; AVX-512: ${isa:-none}; ${ONEDNN_MAX_CPU_ISA:+ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA }"

# run NAME ARGS...: one training into $out/NAME; prints "accuracy s/epoch".
run() {
  local name=$1
  shift
  "$train" --data-dir "$data" --seed "$seed" --model-save-path "$out/$name" "$@" \
    > "$out/$name.out" 2> "$out/$name.err"
  python3 - "$out/$name/history.json" <<'EOF'
import json, sys
h = json.load(open(sys.argv[1]))
epochs = h["epochs"]
secs = sum(e["seconds"] for e in epochs) / len(epochs)
print(f'{h["test"]["acc"]:.4f} {secs:.1f}')
EOF
}

read -r base_acc base_secs < <(run base --labels 0-4 --epochs "$base_epochs")
echo "base model, digits 0-4, $base_epochs epochs: test accuracy (0-4) $base_acc, $base_secs s/epoch"
echo
echo "| 5-9 model | epochs | test accuracy (5-9) | s/epoch |"
echo "|---|---|---|---|"
for epochs in 1 2 5; do
  read -r acc secs < <(run "transfer$epochs" --model-load-path "$out/base" --labels 5-9 \
    --replace-head --freeze-up-to 5 --epochs "$epochs")
  echo "| transferred (convolutions frozen, new head) | $epochs | $acc | $secs |"
done
for epochs in 1 2 5; do
  read -r acc secs < <(run "scratch$epochs" --labels 5-9 --epochs "$epochs")
  echo "| from scratch | $epochs | $acc | $secs |"
done
