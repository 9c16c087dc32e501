#!/usr/bin/env bash
# The cost curve: training images/s and the memory training adds, against the
# batch size (32 to 1024, MNIST itself) and against the input size (28x28 to
# 224x224, mnist-node's architecture built for it, as for a folder dataset of
# that size: the first Dense grows with the image), mnist-train against the
# same model in PyTorch from Python (default, and with mnist-train's tuning),
# alternated point by point. Prints the CPU and a Markdown table.
# Each point times a few steps after a warm-up: fewer for larger inputs, so
# that the whole curve takes minutes; "memory" is the step memory of
# bench/bench_main.cpp and bench/torch_reference.py (peak RSS over the steps
# less the RSS before them: activations, gradients, optimizer state,
# scratch; the data and the model are not in it).
# Usage: bench/cost_curve.sh [REPEATS (default 1)] [--batches "32 64 ..."] [--inputs "28,28,1 64,64,3 ..."]
# Builds build-bench/mnist_bench (or $BENCH_BUILD_DIR/mnist_bench) as
# bench/run_bench.sh does, and installs Debian's python3-torch if missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
repeats=1
batches="32 64 128 256 512 1024"
inputs="28,28,1 32,32,3 64,64,3 96,96,3 128,128,3 160,160,3 224,224,3"
while [ $# -gt 0 ]; do
  case "$1" in
    --batches) batches=$2; shift ;;
    --inputs) inputs=$2; shift ;;
    *) repeats=$1 ;;
  esac
  shift
done
threads=$(nproc)
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "==> installing python3-torch (the PyTorch reference)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch >/dev/null
fi
scripts/download_mnist.sh >&2
bench_dir=${BENCH_BUILD_DIR:-build-bench}
if [ -z "${BENCH_BUILD_DIR:-}" ]; then
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMNIST_BUILD_BENCHMARKS=ON \
    -DMNIST_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$bench_dir" -j "$threads" --target mnist_bench >/dev/null

results=$(mktemp)
trap 'rm -f "$results"' EXIT
tuned=(env OPENBLAS_NUM_THREADS=1
       GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483647:glibc.malloc.mmap_max=0)
coretype=$("$bench_dir/mnist_bench" matmul --threads "$threads" | "$py" -c \
  'import json,sys; print(json.loads(sys.stdin.read())["openblas_coretype"])')
case "$coretype" in
  OpenBLAS*) ;;
  *) tuned+=("OPENBLAS_CORETYPE=$coretype") ;;
esac

# point CURVE INPUT BATCH: one sample of each side.
point() {
  local curve=$1 input=$2 batch=$3
  local h=${input%%,*}
  # About 2,500 images' work at 28x28 per sample (at least 3 steps), 2
  # warm-up steps (5 below 64x64).
  local steps=$(( 2500 * 784 / (h * h) / batch ))
  [ "$steps" -lt 3 ] && steps=3
  [ "$steps" -gt 40 ] && steps=40
  local warmup=2
  [ "$h" -lt 64 ] && warmup=5
  local common=(--steps "$steps" --warmup "$warmup" --threads "$threads" --batch-size "$batch")
  local ref=("$py" bench/torch_reference.py --threads "$threads" --input "$input" --batch-size "$batch"
             --bench-steps "$steps" --warmup "$warmup")
  for side in ours ref-nchw ref-tuned; do
    local line
    case $side in
      ours) line=$("$bench_dir/mnist_bench" train --input "$input" "${common[@]}" | tail -n 1) ;;
      ref-nchw) line=$("${ref[@]}" | tail -n 1) ;;
      ref-tuned) line=$("${tuned[@]}" "${ref[@]}" --channels-last | tail -n 1) ;;
    esac
    printf '%s\t%s\t%s\t%s\t%s\n' "$curve" "$input" "$batch" "$side" "$line" >> "$results"
    echo "  $curve $input batch $batch $side: $(echo "$line" | grep -o '"images_per_second": *[0-9.]*')" >&2
  done
}

for r in $(seq 1 "$repeats"); do
  echo "==> round $r of $repeats" >&2
  for b in $batches; do point batch 28,28,1 "$b"; done
  for i in $inputs; do point input "$i" 128; done
done
cpu=$("$bench_dir/mnist_bench" matmul --threads "$threads" | tail -n 1)

"$py" - "$results" "$cpu" <<'PY'
import json, statistics, sys
cpu = json.loads(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    curve, inp, batch, side, js = line.rstrip("\n").split("\t", 4)
    rows.setdefault((curve, inp, int(batch)), {}).setdefault(side, []).append(json.loads(js))
print(f"\nCPU: {cpu['cpu']}; oneDNN dispatches {cpu['onednn_isa']}; {cpu['threads']} threads; "
      f"OpenBLAS kernels: {cpu['openblas_coretype']}; float32 2048x2048 matrix product: {cpu['gflops']:.0f} GFLOP/s")
print("mnist-node's architecture, RMSprop, fp32; images/s from the mean step (median of the samples); "
      "memory: what training adds to the data and the model (peak RSS over the steps less the RSS before)\n")
print("| curve | input | batch | mnist-train images/s | PyTorch default | PyTorch tuned | vs default | vs tuned "
      "| memory: mnist-train | PyTorch default | PyTorch tuned |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for (curve, inp, batch), sides in rows.items():
    ips = {s: statistics.median(r["images_per_second"] for r in v) for s, v in sides.items()}
    mem = {s: statistics.median(r["step_memory_mib"] for r in v) for s, v in sides.items()}
    shape = "x".join(inp.split(","))
    print(f"| {curve} | {shape} | {batch} | {ips['ours']:.0f} | {ips['ref-nchw']:.0f} | {ips['ref-tuned']:.0f} | "
          f"{ips['ours'] / ips['ref-nchw']:.2f}x | {ips['ours'] / ips['ref-tuned']:.2f}x | "
          f"{mem['ours']:.0f} MiB | {mem['ref-nchw']:.0f} MiB | {mem['ref-tuned']:.0f} MiB |")
print("\nWhat ran in mnist-train: " + next(iter(rows.values()))["ours"][0]["kernels"])
PY
