#!/usr/bin/env bash
# scripts/make_image_folders.py, the writer of the image-folder test data
# (docs/data.md): 200 training and 100 test records as PNG grayscale (each
# file's pixels equal its IDX record, read here independently of the script)
# and as JPEG rgb 32x32; --check passes on what was written and fails, naming
# each file, on a corrupt, swapped, missing or extra file; .gz input gives the
# same files; Fashion-MNIST's class names as folder names; a non-empty OUT is
# refused without --force; bad IDX data is named; a run killed midway leaves
# no OUT, and the next run removes its partial folder. bench/pil_decode_bench.py
# decodes the PNG folder to the records' bytes.
# Usage: image_folders_test.sh SCRIPT MNIST_DATA_DIR WORK_DIR
set -u
. "$(dirname "$0")/lib.sh"
script=$1 data=$2 work=$3
# Debian's python3, which scripts/setup.sh --tests gives PIL and numpy (a
# pyenv or venv python3 earlier on PATH may have neither).
py=/usr/bin/python3
[ -x "$py" ] || py=python3
rm -rf "$work"
mkdir -p "$work"
fail=0
write() { "$py" "$script" "$@" --data-dir "$data" --limit-train 200 --limit-test 100; }

# --- PNG grayscale: the IDX bytes, exactly ---
png=$work/png
write "$png" >"$work/png.out" 2>&1
check "png: exit" 0 $?
check "png: the report" 1 "$(has_match "$work/png.out" '^wrote 300 images \(200 train, 100 test\) to .* s \(')"
check "png: files" 300 "$(find "$png" -type f | wc -l)"
check "png: class folders" "0 1 2 3 4 5 6 7 8 9" "$(ls "$png/train" | sort | xargs)"
# Every file against the raw IDX bytes, by its name (record index) and folder (label).
"$py" - "$png" "$data" >"$work/png.verify" 2>&1 <<'PY'
import os, sys
import numpy as np
from PIL import Image
root, data = sys.argv[1:]
files = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
n = 0
for split, (images, labels) in files.items():
    pixels = open(os.path.join(data, images), "rb").read()
    label = open(os.path.join(data, labels), "rb").read()
    for d, _, names in os.walk(os.path.join(root, split)):
        for name in names:
            i = int(name.split(".")[0])
            assert os.path.basename(d) == str(label[8 + i]), (d, name)
            image = Image.open(os.path.join(d, name))
            assert image.format == "PNG" and image.mode == "L" and image.size == (28, 28)
            assert image.tobytes() == pixels[16 + 784 * i:16 + 784 * (i + 1)], (d, name)
            n += 1
print(f"verified {n} files")
PY
check "png: every file holds its record's bytes" "verified 300 files" "$(cat "$work/png.verify")"
write "$png" --check >"$work/png.check" 2>&1
check "png: --check exit" 0 $?
check "png: --check" 1 "$(has_text "$work/png.check" "check passed: 300 images equal their records exactly")"

# bench/pil_decode_bench.py decodes them all: its checksum is the sum of the
# records' bytes (grayscale, no resize).
bench=$(dirname "$script")/../bench/pil_decode_bench.py
"$py" "$bench" "$png" --color grayscale --repeat 1 >"$work/bench.json" 2>&1
check "bench: exit" 0 $?
"$py" - "$work/bench.json" "$data" >"$work/bench.verify" 2>&1 <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
d = sys.argv[2]
train = open(d + "/train-images-idx3-ubyte", "rb").read()[16:16 + 200 * 784]
test = open(d + "/t10k-images-idx3-ubyte", "rb").read()[16:16 + 100 * 784]
print(r["images"], r["shape"], r["checksum"] == sum(train) + sum(test))
PY
check "bench: images, shape, checksum" "300 [300, 28, 28, 1] True" "$(cat "$work/bench.verify")"

# .gz IDX files (the first 300 and 150 records) give the same files.
"$py" - "$data" "$work/gz" <<'PY'
import gzip, os, sys
data, out = sys.argv[1:]
os.makedirs(out)
for name, n in (("train-images-idx3-ubyte", 300), ("train-labels-idx1-ubyte", 300),
                ("t10k-images-idx3-ubyte", 150), ("t10k-labels-idx1-ubyte", 150)):
    raw = open(os.path.join(data, name), "rb").read()
    header, record = (16, 784) if "images" in name else (8, 1)
    with gzip.open(os.path.join(out, name + ".gz"), "wb") as f:
        f.write(raw[:4] + n.to_bytes(4, "big") + raw[8:header] + raw[header:header + n * record])
PY
"$py" "$script" "$work/png_gz" --data-dir "$work/gz" --limit-train 200 --limit-test 100 >/dev/null 2>&1
check "gz: exit" 0 $?
check "gz: the same files" "" "$(diff -r "$png" "$work/png_gz" 2>&1)"

# Corrupt, swap, remove and add files: --check names each and fails.
seven=$(ls "$png/train/7" | head -2 | xargs)
set -- $seven
echo "not a PNG" >"$png/train/7/$1"
cp "$png/train/0/$(ls "$png/train/0" | head -1)" "$png/test/0/$(ls "$png/test/0" | head -1)"
rm "$png/test/3/$(ls "$png/test/3" | head -1)"
cp "$png/train/7/$2" "$png/train/7/99999.png"
write "$png" --check >"$work/bad.check" 2>&1
check "corrupt: --check exit" 1 $?
check "corrupt: named" 1 "$(has_match "$work/bad.check" "train/7/$1: cannot be decoded")"
check "swapped: named" 1 "$(has_match "$work/bad.check" 'test/0/[0-9]+\.png: [0-9]+ values differ from what test record')"
check "removed: named" 1 "$(has_match "$work/bad.check" 'test/3/[0-9]+\.png: missing')"
check "extra: named" 1 "$(has_match "$work/bad.check" 'train/7/99999\.png: not written by these options')"
check "corrupt: summary" 1 "$(has_text "$work/bad.check" "check FAILED: 3 of the 300 expected images missing or wrong, 1 extra file(s)")"

# A non-empty OUT is refused, then replaced with --force.
write "$png" >"$work/refused.out" 2>&1
check "non-empty OUT: exit" 4 $?
check "non-empty OUT: message" 1 "$(has_match "$work/refused.out" "png: the folder is not empty; give --force to replace it")"
write "$png" --force >"$work/force.out" 2>&1
check "--force: replaced" 1 "$(has_match "$work/force.out" '^removing the replaced folder')"
check "--force: 300 files again" 300 "$(find "$png" -type f | wc -l)"
check "no partial folders left" "" "$(ls -A "$work" | grep partial)"

# --- JPEG rgb 32x32: tinted, lossy, checked against PIL's encoding ---
jpg=$work/jpeg
write "$jpg" --format jpeg --color rgb >/dev/null 2>&1
check "jpeg: exit" 0 $?
"$py" - "$jpg" >"$work/jpeg.verify" 2>&1 <<'PY'
import os, sys
from PIL import Image
kinds, backgrounds = set(), set()
for d, _, names in os.walk(sys.argv[1]):
    for name in names:
        image = Image.open(os.path.join(d, name))
        kinds.add((name.rsplit(".", 1)[1], image.format, image.mode, image.size))
        backgrounds.add(image.getpixel((0, 0)))
print(sorted(kinds), len(backgrounds) > 100)
PY
check "jpeg: files" "[('jpg', 'JPEG', 'RGB', (32, 32))] True" "$(cat "$work/jpeg.verify")"
write "$jpg" --format jpeg --color rgb --check >"$work/jpeg.check" 2>&1
check "jpeg: --check exit" 0 $?
check "jpeg: errors reported" 1 "$(has_match "$work/jpeg.check" '"jpeg_mean_abs_error": [0-9.]+, "jpeg_max_abs_error": [0-9]+')"
victim=$(find "$jpg/train" -name '*.jpg' | sort | head -1)
head -c 300 "$victim" >"$work/half.jpg" && cp "$work/half.jpg" "$victim"
write "$jpg" --format jpeg --color rgb --check >"$work/jpeg.bad" 2>&1
check "jpeg: truncated file fails --check" 1 $?
check "jpeg: truncated file named" 1 "$(has_text "$work/jpeg.bad" "$victim: cannot be decoded")"
write "$jpg" --format jpeg --color rgb --seed 1 --check >/dev/null 2>&1
check "jpeg: another --seed's tints fail --check" 1 $?

# --- Fashion-MNIST's names as folder names (its files have MNIST's format) ---
"$py" "$script" "$work/fashion" --dataset fashion-mnist --data-dir "$data" --layout flat \
  --limit-train 100 >/dev/null 2>&1
check "fashion flat: exit" 0 $?
check "fashion flat: class folders" "Ankle boot|Bag|Coat|Dress|Pullover|Sandal|Shirt|Sneaker|T-shirt_top|Trouser" \
  "$(ls "$work/fashion" | sort | paste -sd'|')"
check "fashion flat: files" 100 "$(find "$work/fashion" -type f | wc -l)"
# The real Fashion-MNIST (.gz files) where Debian's dataset-fashion-mnist is installed.
fashion=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
if [ -d "$fashion" ]; then
  args=(--dataset fashion-mnist --data-dir "$fashion" --limit-train 200 --limit-test 100
        --format jpeg --color rgb)
  "$py" "$script" "$work/fashion_real" "${args[@]}" >/dev/null 2>&1 &&
    "$py" "$script" "$work/fashion_real" "${args[@]}" --check >/dev/null 2>&1
  check "fashion-mnist: written and checked" 0 $?
  # Its first training record is an ankle boot (label 9).
  check "fashion-mnist: record 0" 1 "$([ -f "$work/fashion_real/train/Ankle boot/00000.jpg" ] && echo 1 || echo 0)"
else
  echo "skip fashion-mnist: $fashion not found (scripts/setup.sh --fashion-mnist)"
fi

# --- Bad input: one clear line, exit 3 (data) or 2 (options) ---
mkdir -p "$work/truncated"
cp "$data"/*labels* "$work/truncated/"
head -c 100000 "$data/train-images-idx3-ubyte" >"$work/truncated/train-images-idx3-ubyte"
"$py" "$script" "$work/out_truncated" --data-dir "$work/truncated" >"$work/truncated.err" 2>&1
check "truncated IDX: exit" 3 $?
check "truncated IDX: message" 1 "$(has_match "$work/truncated.err" "truncated/train-images-idx3-ubyte: truncated or record count mismatch: the header promises 60000 records")"
check "truncated IDX: nothing written" 0 "$(ls -A "$work" | grep -c out_truncated)"
"$py" "$script" "$work/x" --data-dir "$data" --quality 0 >"$work/quality.err" 2>&1
check "bad --quality: exit" 2 $?
check "bad --quality: message" 1 "$(has_text "$work/quality.err" "--quality: must be 1..95, got 0")"

# --- Killed midway: no OUT, only a hidden partial folder, swept next run ---
killed=$work/killed
setsid "$py" "$script" "$killed" --data-dir "$data" --limit-train 20000 --limit-test 1 --workers 2 \
  >/dev/null 2>&1 &
launcher=$!
partial=""
for _ in $(seq 200); do
  partial=$(ls -d "$work"/.killed.partial-* 2>/dev/null | head -1)
  [ -n "$partial" ] && [ "$(find "$partial" -type f | head -1)" ] && break
  sleep 0.05
done
pid=${partial##*partial-}
if [ -n "$pid" ]; then
  kill -KILL -- "-$(ps -o pgid= -p "$pid" | tr -d ' ')" 2>/dev/null
fi
wait "$launcher" 2>/dev/null
check "killed: a partial folder was being written" 1 "$([ -n "$pid" ] && echo 1 || echo 0)"
check "killed: no OUT" 0 "$(ls -A "$work" | grep -cx killed)"
write "$killed" >/dev/null 2>&1
check "after a kill: the next run writes OUT" 300 "$(find "$killed" -type f | wc -l)"
check "after a kill: the partial folder is gone" "" "$(ls -A "$work" | grep partial)"

[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
