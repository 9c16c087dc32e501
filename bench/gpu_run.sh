#!/usr/bin/env bash
# Runs on a GPU machine with PyTorch installed (no network), from the repo
# root, after bench/prepare_gpu_carry.sh made .gpu/ here and it was carried
# there: builds mnist-train against PyTorch's libtorch (CUDA), runs the test
# suite with CUDA (the Node/TF.js tests aside), a full 20-epoch --gpu run,
# and the PyTorch-Python reference on the same GPU. Results go to $OUT.
# Usage: bench/gpu_run.sh [tests|quick|gtest ARGS...]   (tests: build and test only; quick:
# build, the two 20-epoch --gpu runs, then the tests, without the PyTorch reference)
# If the build with CUDA graphs fails, it says why and builds without them.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
P=$PWD/.gpu/root
step() { echo; echo "=== $* [$(date +%T)]"; }

step machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
command -v g++ nvcc cmake ninja; g++ --version | head -1

mkdir -p data/mnist
for f in .gpu/mnist/*.gz; do gunzip -c "$f" > "data/mnist/$(basename "$f" .gz)"; done
export LD_LIBRARY_PATH=$P/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
TP=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)

build() {  # $1: C++ standard, then extra cmake arguments
  local std=$1; shift
  rm -rf build-gpu
  cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_STANDARD="$std" "$@" \
    -DCMAKE_PREFIX_PATH="$TP;$P/usr;$P/usr/lib/x86_64-linux-gnu/cmake" \
    -DZLIB_LIBRARY="$P/usr/lib/x86_64-linux-gnu/libz.a" -DZLIB_INCLUDE_DIR="$P/usr/include" \
    -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON \
    > "$OUT/cmake.txt" 2>&1 && cmake --build build-gpu -j "$(nproc)" > "$OUT/build.txt" 2>&1
}
step "build"
if ! build 17; then
  echo "build with CUDA graphs failed:"; tail -n 30 "$OUT/cmake.txt"; grep -m 20 -A3 "error" "$OUT/build.txt"
  cp "$OUT/build.txt" "$OUT/build-graphs-failed.txt"
  build 17 -DMNIST_CUDA_GRAPHS=OFF || { grep -m 20 -A3 "error" "$OUT/build.txt"; exit 1; }
fi
grep -E "CUDA|cuDNN|Torch" "$OUT/cmake.txt" | head
epochs() { python3 bench/history_summary.py "$@"; }

run_tests() {
  step "tests (CUDA build; Node/browser and curl/ab tests excluded)"
  (cd build-gpu && MNIST_DATA_DIR=$PWD/../data/mnist timeout 150 ctest -LE node -E '^serve\.' -j 8 \
     --output-on-failure 2>&1 | tail -n 25)
}
[ "${1:-}" = tests ] && { run_tests; exit 0; }
# gtest [ARGS...]: build, then only the unit-test binary with ARGS (e.g. a filter).
[ "${1:-}" = gtest ] && { shift; ./build-gpu/tests/mnist_tests "$@"; exit; }

step "mnist-train --gpu, 20 epochs, fp32"
./build-gpu/mnist-train --gpu --epochs 20 --batch-size 128 --seed 1 --model-save-path /tmp/gpu_fp32
cp /tmp/gpu_fp32/history.json "$OUT/gpu_fp32_history.json"; epochs "$OUT/gpu_fp32_history.json"
step "mnist-train --gpu, 20 epochs, bf16"
./build-gpu/mnist-train --gpu --precision bf16 --epochs 20 --batch-size 128 --seed 1 \
  --model-save-path /tmp/gpu_bf16
cp /tmp/gpu_bf16/history.json "$OUT/gpu_bf16_history.json"; epochs "$OUT/gpu_bf16_history.json"
[ "${1:-}" = quick ] && { run_tests; exit 0; }

step "PyTorch-Python reference, same GPU, 20 epochs"
python3 bench/torch_reference.py --device cuda --epochs 20 --seed 1

step "mnist-train --gpu --no-cuda-graphs (eager steps), 5 epochs, fp32 (the before figure)"
./build-gpu/mnist-train --gpu --no-cuda-graphs --epochs 5 --seed 1 --model-save-path /tmp/gpu_eager
cp /tmp/gpu_eager/history.json "$OUT/gpu_eager_history.json"; epochs "$OUT/gpu_eager_history.json"
run_tests
step done
