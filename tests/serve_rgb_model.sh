#!/usr/bin/env bash
# The model and data of serve.browser_rgb (tests/node/browser_rgb_check.js):
# a small split folder of tinted RGB PNGs (scripts/make_image_folders.py,
# 32x32: MNIST padded by 2), a model trained on it for two epochs with
# --crop-to-aspect-ratio (so that the page must crop an upload as our decoder
# does), a 24x24 grayscale one, and an image to upload: a test image stretched to 52x40 with PIL
# (not square, not the model's size: the page crops and resizes it).
# Usage: serve_rgb_model.sh MNIST_TRAIN DATA_DIR OUT_DIR
set -u
train=$1 data=$2 out=$3
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib.sh"
fail=0
rm -rf "$out" && mkdir -p "$out"
/usr/bin/python3 "$root/scripts/make_image_folders.py" --data-dir "$data" --workers 2 \
  --format png --color rgb --limit-train 400 --limit-test 100 "$out/rgb" > /dev/null
check "make_image_folders: exit" 0 $?
"$train" --data-dir "$out/rgb" --epochs 2 --seed 5 --batch-size 64 --cache-dir "$out/cache" \
  --crop-to-aspect-ratio --model-save-path "$out/model" > "$out/train.txt" 2>&1
check "train on the RGB folder: exit" 0 $?
check "the model takes 32x32 RGB" 1 "$(has_text "$out/model/model.json" '"batch_input_shape":[null,32,32,3]')"
check "its metadata says crop" 1 "$(has_text "$out/model/model.json" '"cropToAspectRatio":true')"
# And one of 24x24 grayscale, resized without a crop: the page turns the RGB
# upload to gray with libpng's integers, as our decoder does.
"$train" --data-dir "$out/rgb" --epochs 2 --seed 5 --batch-size 64 --cache-dir "$out/cache" \
  --color-mode grayscale --image-size 24,24 --model-save-path "$out/gray" > "$out/train-gray.txt" 2>&1
check "train a grayscale 24x24 model on it: exit" 0 $?
check "the gray model takes 24x24x1" 1 "$(has_text "$out/gray/model.json" '"batch_input_shape":[null,24,24,1]')"
first=$(find "$out/rgb/test/3" -name '*.png' | sort | head -1)
/usr/bin/python3 -c "
from PIL import Image
Image.open('$first').convert('RGB').resize((52, 40), Image.BILINEAR).save('$out/upload.png')"
check "the upload image" 0 $?
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
