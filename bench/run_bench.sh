#!/usr/bin/env bash
# mnist-train's training step against the same model, optimizer, batch size
# and thread count in PyTorch from Python, alternated in one run on real
# MNIST, after warm-up; medians and spread. The table names the CPU, the
# instruction set oneDNN dispatches, the OpenBLAS kernels, and for each row
# the kernels that really ran (docs/performance.md explains the rows).
# Usage: bench/run_bench.sh [REPEATS (default 3)] [STEPS per sample (default 60)] [--avx2]
#                           [--input H,W,C | --mobilenet-v2]
#   --input: mnist-node's architecture built for HxW images of C channels (as
#           for a folder dataset), fed MNIST resized and tinted to that
#           (default 28,28,1: MNIST itself).
#   --mobilenet-v2: a fine-tune instead: Keras applications' MobileNetV2
#           (alpha 0.35, 96x96x3, made by real TF.js:
#           tests/node/make_reference_model.js) frozen up to out_relu, a new
#           Dense head of 10 units (mnist-train's --freeze-up-to out_relu
#           --replace-head), against the same model and freeze in PyTorch;
#           MNIST resized to 96x96 and tinted into 3 channels.
#   --avx2: on an AVX-512 machine, emulate an AVX2-only one for both sides:
#           ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell
#           (what OpenBLAS picks on AMD Zen 2/3 and Intel Haswell to Alder Lake).
# Installs python3-torch (Debian) if missing, builds build-bench/mnist_bench
# (or $BENCH_BUILD_DIR/mnist_bench).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
args=()
emulate=0
input=28,28,1
while [ $# -gt 0 ]; do
  case "$1" in
    --avx2) emulate=1 ;;
    --input) input=$2; shift ;;
    --mobilenet-v2) input=mobilenet-v2 ;;
    *) args+=("$1") ;;
  esac
  shift
done
repeats=${args[0]:-3}
steps=${args[1]:-60}
threads=$(nproc)
if [ "$emulate" -eq 1 ]; then
  export ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell
fi

# Debian's python3 (a pyenv or venv python3 earlier on PATH would not see python3-torch).
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "==> installing python3-torch (the PyTorch reference)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch >/dev/null
fi
scripts/download_mnist.sh >&2
# BENCH_BUILD_DIR: an existing build configured with -DMNIST_BUILD_BENCHMARKS=ON
# (saves a second build of the core); by default build-bench/, configured here.
bench_dir=${BENCH_BUILD_DIR:-build-bench}
if [ -z "${BENCH_BUILD_DIR:-}" ]; then
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMNIST_BUILD_BENCHMARKS=ON \
    -DMNIST_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$bench_dir" -j "$threads" --target mnist_bench >/dev/null

ours_model=()
ref_model=(--input "$input")
if [ "$input" = mobilenet-v2 ]; then
  # The model, made by real TF.js (tests/node's packages, as the test set-up
  # installs them).
  if [ ! -d tests/node/node_modules/@tensorflow ]; then
    echo "==> installing tests/node's packages (npm ci), for TF.js" >&2
    (cd tests/node && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 ONNXRUNTIME_NODE_INSTALL_CUDA=skip \
       npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  model_dir=$(mktemp -d)
  node tests/node/make_reference_model.js "$model_dir" --arch mobilenet-v2 --count 1 >&2
  ours_model=(--model "$model_dir" --freeze-up-to out_relu --head-units 10)
  ref_model=(--arch mobilenet-v2)
fi

results=$(mktemp)
trap 'rm -rf "$results" ${model_dir:+"$model_dir"}' EXIT
run() {  # LABEL COMMAND...: append "LABEL<TAB>json"
  local label=$1
  shift
  printf '%s\t%s\n' "$label" "$("$@" | tail -n 1)" >> "$results"
  echo "  $label: $(tail -n 1 "$results" | cut -f2 | cut -c1-120)" >&2
}
ours=("$bench_dir/mnist_bench")
shape=(--input "$input")
[ ${#ours_model[@]} -gt 0 ] && shape=("${ours_model[@]}")
ref=("$py" bench/torch_reference.py --threads "$threads" "${ref_model[@]}")
run matmul "${ours[@]}" matmul --threads "$threads"
# What a tuned Python user can do: channels-last, OpenBLAS on one thread, glibc's
# allocator told to keep freed memory and to map no block on its own, and OpenBLAS's kernels chosen where it
# picked generic ones for this CPU: the same tuning mnist-train does.
coretype=$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["openblas_coretype"])' \
  "$(tail -n 1 "$results" | cut -f2)")
tuned=(env OPENBLAS_NUM_THREADS=1
       GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483647:glibc.malloc.mmap_max=0)
case "$coretype" in
  OpenBLAS*) ;;
  *) tuned+=("OPENBLAS_CORETYPE=$coretype") ;;
esac

for r in $(seq 1 "$repeats"); do
  echo "==> round $r of $repeats" >&2
  run ours-fp32 "${ours[@]}" train "${shape[@]}" --precision fp32 --steps "$steps" --threads "$threads"
  run ours-fp32-direct "${ours[@]}" train "${shape[@]}" --precision fp32 --steps "$steps" --threads "$threads" \
    --no-onednn
  run ref-nchw "${ref[@]}" --bench-steps "$steps"
  run ours-bf16 "${ours[@]}" train "${shape[@]}" --precision bf16 --steps "$steps" --threads "$threads"
  run ours-bf16-libtorch "${ours[@]}" train "${shape[@]}" --precision bf16 --steps "$steps" --threads "$threads" \
    --no-onednn
  run ref-tuned "${tuned[@]}" "${ref[@]}" --bench-steps "$steps" --channels-last
done
run eval-ours-fp32 "${ours[@]}" eval "${shape[@]}" --precision fp32 --threads "$threads"
run eval-ours-fp32-direct "${ours[@]}" eval "${shape[@]}" --precision fp32 --threads "$threads" --no-onednn
run eval-ours-bf16 "${ours[@]}" eval "${shape[@]}" --precision bf16 --threads "$threads"
run eval-ref-nchw "${ref[@]}" --bench-steps 1 --eval
run eval-ref-tuned "${tuned[@]}" "${ref[@]}" --bench-steps 1 --eval --channels-last

python3 - "$results" "$threads" "$emulate" "$input" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, js = line.rstrip("\n").split("\t", 1)
    rows.setdefault(label, []).append(json.loads(js))
threads, emulated = sys.argv[2], sys.argv[3] == "1"
m = rows["matmul"][0]
peak = m["gflops"]
mobilenet = sys.argv[4] == "mobilenet-v2"
height, width, channels = (96, 96, 3) if mobilenet else (int(v) for v in sys.argv[4].split(","))


def flop_per_image():
    """One training step of mnist-node's model per image, direct convolutions:
    three times the forward pass's multiply-adds x 2 (61.5 MFLOP at 28x28x1)."""
    h, w, c, flop = height, width, channels, 0
    for cout, pool in [(32, False), (32, True), (64, False), (64, True)]:
        h, w = h - 2, w - 2
        flop += 2 * 9 * c * cout * h * w
        c = cout
        if pool:
            h, w = h // 2, w // 2
    flop += 2 * (h * w * c * 512 + 512 * 10)
    return 3 * flop


flop_per_image = None if mobilenet else flop_per_image()
base = statistics.median(r["images_per_second"] for r in rows["ref-nchw"])
data = "real MNIST" if sys.argv[4] == "28,28,1" else f"MNIST resized and tinted to {height}x{width}x{channels}"
if mobilenet:
    r = rows["ours-fp32"][0]
    data = (f"MobileNetV2 (alpha 0.35) fine-tune: frozen up to out_relu ({r['frozen_layers']} layers), "
            f"a new Dense head of 10 ({r['trainable_params']} of {r['params']} parameters trainable), {data}")
print(f"\nmnist-train vs PyTorch-Python, batch 128, {threads} threads, {data}; "
      f"medians of {len(rows['ours-fp32'])} alternated samples (min-max)")
print(f"CPU: {m['cpu']}; oneDNN dispatches {m['onednn_isa']}"
      + (" (AVX2 EMULATED on this CPU: ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 "
         "OPENBLAS_CORETYPE=Haswell)" if emulated else ""))
print(f"OpenBLAS kernels: {m['openblas_coretype']}; float32 2048x2048 matrix product: {peak:.0f} GFLOP/s")
print("images/s and s/epoch: from each sample's mean step (slow steps count, as in an epoch); "
      "median/mean step: the medians over samples of each sample's median and mean step")
if flop_per_image:
    print(f"GFLOP/s counts a direct convolution's work ({flop_per_image / 1e6:.1f} MFLOP per image); "
          "Winograd does less")
print("start-up: from exec to the first training batch; step memory: what training adds to the "
      "resident data and model (peak RSS over the steps less the RSS before them), median\n")

def bf16_label(key, suffix):
    r = rows[key][0]
    if r["precision"] == "bf16":
        return "mnist-train bf16 autocast" + suffix
    return "mnist-train bf16 asked: runs fp32 (no native bf16)" + suffix

names = {"ours-fp32": "mnist-train fp32 (default)",
         "ours-fp32-direct": "mnist-train fp32 --no-onednn",
         "ours-bf16": bf16_label("ours-bf16", ""),
         "ours-bf16-libtorch": bf16_label("ours-bf16-libtorch", " --no-onednn"),
         "ref-nchw": "PyTorch-Python fp32 NCHW (default)",
         "ref-tuned": "PyTorch-Python fp32 CL + tuning"}
width = max(len(n) for n in names.values())
print(f"| {'training step':<{width}} | {'images/s':>18} | {'s/epoch':>7} | {'vs ref NCHW':>11} | {'vs ref tuned':>12} | {'median/mean step':>16} | {'GFLOP/s':>7} | {'start-up':>8} | {'step memory':>11} | {'peak RSS':>9} |")
print(f"|{'-'*(width+2)}|{'-'*20}|{'-'*9}|{'-'*13}|{'-'*14}|{'-'*18}|{'-'*9}|{'-'*10}|{'-'*13}|{'-'*11}|")
tuned = statistics.median(r["images_per_second"] for r in rows["ref-tuned"])
for key in ["ours-fp32", "ours-fp32-direct", "ours-bf16", "ours-bf16-libtorch", "ref-nchw",
            "ref-tuned"]:
    ips = [r["images_per_second"] for r in rows[key]]
    med = statistics.median(ips)
    gf = f"{med * flop_per_image / 1e9:.0f}" if flop_per_image else "-"
    rss = max(r["peak_rss_mib"] for r in rows[key])
    step_mem = statistics.median(r["step_memory_mib"] for r in rows[key])
    start = statistics.median(r["startup_to_first_batch_s"] for r in rows[key])
    med_step = statistics.median(r["median_step_ms"] for r in rows[key])
    mean_step = statistics.median(r["ms_per_step"] for r in rows[key])
    steps_ms = f"{med_step:.1f}/{mean_step:.1f} ms"
    spread = f"{med:.0f} ({min(ips):.0f}-{max(ips):.0f})"
    print(f"| {names[key]:<{width}} | {spread:>18} | {51000 / med:>7.1f} | {med / base:>10.2f}x | "
          f"{med / tuned:>11.2f}x | {steps_ms:>16} | {gf:>7} | {start:>6.2f} s | {step_mem:>7.0f} MiB | {rss:>5.0f} MiB |")
print("\nWhat ran in each mnist-train row:")
for key in ["ours-fp32", "ours-fp32-direct", "ours-bf16", "ours-bf16-libtorch"]:
    print(f"- {names[key]}: {rows[key][0]['kernels']}")
print(f"\n| {'evaluation (forward only, batch 256)':<40} | {'images/s':>9} |")
print(f"|{'-'*42}|{'-'*11}|")
for key, name in [("eval-ours-fp32", "mnist-train fp32 (default)"),
                  ("eval-ours-fp32-direct", "mnist-train fp32 --no-onednn"),
                  ("eval-ours-bf16", "mnist-train bf16 asked (" + rows["eval-ours-bf16"][0]["precision"] + " ran)"),
                  ("eval-ref-nchw", "PyTorch-Python fp32 NCHW"), ("eval-ref-tuned", "PyTorch-Python fp32 CL + tuning")]:
    print(f"| {name:<40} | {rows[key][0]['eval_images_per_second']:>9.0f} |")
PY
