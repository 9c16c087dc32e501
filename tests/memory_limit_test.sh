#!/usr/bin/env bash
# A folder whose decoded cache is larger than the memory the run may use
# (docs/data.md, "Decoding, once"): mnist-train runs in a memory cgroup (v1)
# whose limit is well under the cache file's size, decodes every image into the cache,
# trains an epoch and evaluates a test set that reads most of the records,
# and is not killed: the cache's pages (the page cache of its mapping) count
# toward the limit but are dropped and read again as needed. The limit must
# be reached (the cgroup's largest use at it), or the test proves nothing; no OOM kill
# (memory.oom_control's oom_kill), exit 0. The test set (90%) is evaluated
# batch by batch from the cache, so every page of it is read.
# Exits 77 (skipped) where no memory cgroup can be made: not root, or no
# cgroup v1 memory controller.
# Usage: memory_limit_test.sh MNIST_TRAIN OUT_DIR [LIMIT_MB] [FILES]
# (default: 13,000 files decoded at 128x128 RGB, a 609 MB cache, a 384 MB limit;
# about 1.5 minutes on 2 busy cores, most of it the kernel reading back pages)
set -u
# OpenMP threads that spin while they wait steal a busy machine's cores.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
train=$1 out=$2 limit_mb=${3:-384} files=${4:-13000}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib.sh"
fail=0
skip() { echo "SKIP: $1"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "not root: no memory cgroup can be made"
parent=/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
[ -f "$parent/memory.limit_in_bytes" ] || skip "no cgroup v1 memory controller ($parent)"
cg=$parent/mnist-train-memory-test-$$
mkdir "$cg" 2> /dev/null || skip "cannot make a memory cgroup under $parent"
cleanup() {
  # Any process left in the cgroup goes first, then the cgroup.
  for p in $(cat "$cg/cgroup.procs" 2> /dev/null); do kill -KILL "$p" 2> /dev/null; done
  for _ in $(seq 50); do rmdir "$cg" 2> /dev/null && break; sleep 0.1; done
}
trap cleanup EXIT
rm -rf "$out" && mkdir -p "$out"
python3 "$root/tests/make_linked_folder.py" "$out/data" --files "$files" --side 8 > /dev/null ||
  { echo "FAIL: make_linked_folder.py"; exit 1; }
# A small model for 128x128 RGB records (48 KB each): an 8x8 convolution of
# stride 8 and a softmax layer. mnist-node's model would need far more
# memory for its own activations than the limit allows; this one's working
# set is the batch, so what the limit tests is the cache.
size=128
python3 - "$root/tests/data/tfjs_reference_model.json" "$out/model0" "$size" <<'PY' ||
import json, os, random, struct, sys
reference, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
layers = json.load(open(reference))["modelTopology"]["config"]["layers"]
first = lambda kind: json.loads(json.dumps(next(l for l in layers if l["class_name"] == kind)))
conv, flat, dense = first("Conv2D"), first("Flatten"), first("Dense")
conv["config"].update(filters=2, kernel_size=[8, 8], strides=[8, 8], name="conv",
                      batch_input_shape=[None, size, size, 3])
flat["config"]["name"] = "flatten"
dense["config"].update(units=2, activation="softmax", name="dense")
flat_units = (size // 8) ** 2 * 2
shapes = [("conv/kernel", [8, 8, 3, 2]), ("conv/bias", [2]),
          ("dense/kernel", [flat_units, 2]), ("dense/bias", [2])]
random.seed(1)
os.makedirs(out)
with open(os.path.join(out, "weights.bin"), "wb") as f:
    for _, shape in shapes:
        n = 1
        for d in shape:
            n *= d
        f.write(struct.pack(f"<{n}f", *[random.uniform(-0.05, 0.05) for _ in range(n)]))
json.dump({"modelTopology": {"class_name": "Sequential",
                             "config": {"name": "tiny", "layers": [conv, flat, dense]},
                             "keras_version": "tfjs-layers 4.22.0",
                             "backend": "tensor_flow.js"},
           "format": "layers-model", "generatedBy": "memory_limit_test.sh", "convertedBy": None,
           "weightsManifest": [{"paths": ["weights.bin"], "weights": [
               {"name": n, "shape": s, "dtype": "float32"} for n, s in shapes]}],
           "userDefinedMetadata": {"classNames": ["class_0", "class_1"]}},
          open(os.path.join(out, "model.json"), "w"))
PY
  { echo "FAIL: the small model"; exit 1; }
cache_mb=$((files * size * size * 3 / 1048576))
echo "cache: $cache_mb MB of records ($files images of ${size}x${size}x3); memory limit: $limit_mb MB"
check "the cache is larger than the limit" 1 "$([ "$cache_mb" -gt "$limit_mb" ] && echo 1 || echo 0)"
echo $((limit_mb << 20)) > "$cg/memory.limit_in_bytes"
# No swapping out instead (where there is swap to count).
echo $((limit_mb << 20)) > "$cg/memory.memsw.limit_in_bytes" 2> /dev/null
# The run joins the cgroup, then becomes mnist-train.
sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cg" \
  "$train" --data-dir "$out/data" --cache-dir "$out/cache" --model-load-path "$out/model0" \
  --epochs 1 --train-limit 1024 --test-split 0.9 --validation-split 0.01 \
  --batch-size 64 --seed 4 --model-save-path "$out/model" > "$out/run.txt" 2>&1
status=$?
tail -3 "$out/run.txt"
check "under the limit: exit" 0 "$status"
check "every image decoded into the cache" 1 \
  "$(has_match "$out/run.txt" "images: ${size}x${size} rgb, $files decoded in [0-9.]+ s; cached in ")"
check "the test set evaluated" 1 "$(has_match "$out/run.txt" "data: [0-9]+ training, [0-9]+ validation, [0-9]{5} test images")"
max=$(cat "$cg/memory.max_usage_in_bytes")
failcnt=$(cat "$cg/memory.failcnt")
oom_kills=$(awk '$1 == "oom_kill" {print $2}' "$cg/memory.oom_control")
echo "cgroup: largest use $((max >> 20)) MB of $limit_mb MB; the limit was reached $failcnt times; oom_kill ${oom_kills:-?}"
# The largest use at the limit: the cache's pages were dropped to stay under
# it (memory.failcnt, which counts failed charges, stays 0 on some kernels).
check "the limit was reached (the page cache was reclaimed)" 1 \
  "$([ "$max" -ge $(((limit_mb << 20) * 9 / 10)) ] && echo 1 || echo 0)"
check "no OOM kill" 0 "${oom_kills:-0}"
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
