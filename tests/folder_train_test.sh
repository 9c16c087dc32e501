#!/usr/bin/env bash
# Training, evaluating and predicting on folders of image files, as users'
# folders look (MNIST written as class folders by scripts/make_image_folders.py):
# the decoded images' cache, the model built for the images and classes,
# the classes in model.json, which files went where in history.json, bad
# images stopping the run (or skipped), and the errors of folders that are
# no dataset and of models that do not fit the images.
# Usage: image_folder_test.sh MNIST_TRAIN DATA_DIR OUT_DIR
set -u
train=$1 data=$2 out=$3
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib.sh"
fail=0
rm -rf "$out" && mkdir -p "$out"
make_folders() { /usr/bin/python3 "$root/scripts/make_image_folders.py" --data-dir "$data" \
  --workers 2 "$@" > /dev/null; }
make_folders "$out/png" --limit-train 600 --limit-test 200 || { echo "FAIL: make_image_folders"; exit 1; }
make_folders "$out/rgb" --layout flat --format jpeg --color rgb --limit-train 400 ||
  { echo "FAIL: make_image_folders rgb"; exit 1; }
cache=$out/cache
common=(--epochs 1 --seed 3 --batch-size 64 --cache-dir "$cache")

# 1. A folder of train/ and test/ class folders: mnist-node's model for
# 28x28 grayscale and ten classes; decoded once, then from the cache.
"$train" --data-dir "$out/png" "${common[@]}" --model-save-path "$out/m1" > "$out/run1.txt" 2>&1
check "train on a PNG folder: exit" 0 $?
check "the classes are the folders" 1 \
  "$(has_text "$out/run1.txt" "$out/png: 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), 800 image files")"
check "decoded and cached" 1 "$(has_match "$out/run1.txt" "images: 28x28 grayscale, 800 decoded in .*; cached in $cache/")"
check "data line" 1 "$(has_text "$out/run1.txt" "data: 510 training, 90 validation, 200 test images from $out/png")"
check "model.json names the classes, size and colours" 1 "$(has_text "$out/m1/model.json" \
  '"userDefinedMetadata":{"classNames":["0","1","2","3","4","5","6","7","8","9"],"imageSize":[28,28],"colorMode":"grayscale"}')"
check "history.json: which files trained" 600 "$(/usr/bin/python3 -c "
import json; d = json.load(open('$out/m1/history.json'))['data']
print(len(d['files']['train']) + len(d['files']['validation']))")"
"$train" --data-dir "$out/png" "${common[@]}" > "$out/run2.txt" 2>&1
check "second run: exit" 0 $?
check "second run reads the cache" 1 "$(has_match "$out/run2.txt" "images: 28x28 grayscale, read from the cache $cache/.*\.u8")"

# 2. evaluate and predict take the folder and name the classes.
"$train" evaluate --model "$out/m1" --data-dir "$out/png" --cache-dir "$cache" --json > "$out/eval.json"
check "evaluate a folder: exit" 0 $?
check "evaluate counts test/'s images" 200 "$(/usr/bin/python3 -c "
import json; print(json.load(open('$out/eval.json'))['count'])")"
"$train" evaluate --model "$out/m1" > "$out/eval-nodir.txt" 2>&1
check "evaluate without --data-dir asks for it" 2 $?
one=$(find "$out/png/test/7" -name '*.png' | sort | head -1)
"$train" predict --json --model "$out/m1" "$one" "$out/png/test/3" > "$out/predict.json"
check "predict files and a folder: exit" 0 $?
check "predict reads every file of the folder" 1 "$(/usr/bin/python3 -c "
import json, os; p = json.load(open('$out/predict.json'))
print(int(len(p) == 1 + len(os.listdir('$out/png/test/3')) and 'class_name' in p[0]))")"

# 3. A flat folder of RGB JPEGs, split with the seed into training,
# validation and test; resized to 24x24: the model takes [24,24,3].
"$train" --data-dir "$out/rgb" "${common[@]}" --validation-split 0.2 --test-split 0.1 \
  --image-size 24,24 --model-save-path "$out/m2" > "$out/run3.txt" 2>&1
check "train on RGB JPEGs: exit" 0 $?
check "rgb at 24x24" 1 "$(has_match "$out/run3.txt" "images: 24x24 rgb, 400 decoded")"
check "Keras's split: 280 / 80 / 40" 1 "$(has_text "$out/run3.txt" "data: 280 training, 80 validation, 40 test images")"
check "the model's input" 1 "$(has_text "$out/m2/model.json" '"batch_input_shape":[null,24,24,3]')"
# A model of 24x24x3 continues on the folder at its own size; another size is refused.
"$train" --data-dir "$out/rgb" "${common[@]}" --model-load-path "$out/m2" > "$out/run4.txt" 2>&1
check "continue training at the model's size: exit" 0 $?
"$train" --data-dir "$out/rgb" "${common[@]}" --model-load-path "$out/m2" --image-size 32,32 \
  > "$out/run5.txt" 2>&1
check "another --image-size than the model's: exit" 2 $?
check "the error names both" 1 "$(has_text "$out/run5.txt" "the model's input is [null,24,24,3]; --image-size 32,32 makes images of another size")"
# A model of 28x28 grayscale reads the RGB images as it takes them, as
# Keras would with its color_mode and image_size.
"$train" --data-dir "$out/rgb" "${common[@]}" --model-load-path "$out/m1" > "$out/run6.txt" 2>&1
check "a 28x28x1 model on rgb images: exit" 0 $?
check "read at the model's size and colours" 1 "$(has_match "$out/run6.txt" "images: 28x28 grayscale, 400 decoded")"

# 4. Bad images stop the run before training, listed; --skip-bad-images
# trains without them and history.json lists them.
cp -r "$out/png" "$out/bad"
head -c 100 "$(find "$out/bad/train/1" -name '*.png' | sort | head -1)" > "$out/bad/train/1/cut.png"
echo "not an image" > "$out/bad/train/2/text.jpg"
"$train" --data-dir "$out/bad" "${common[@]}" > "$out/run7.txt" 2>&1
check "bad images: exit" 3 $?
check "bad images are listed" 1 "$(has_text "$out/run7.txt" "2 of its 802 image files cannot be used:")"
check "the cut file" 1 "$(has_text "$out/run7.txt" "train/1/cut.png: ")"
check "the remedy" 1 "$(has_text "$out/run7.txt" "--skip-bad-images")"
"$train" --data-dir "$out/bad" "${common[@]}" --skip-bad-images --model-save-path "$out/m3" \
  > "$out/run8.txt" 2>&1
check "--skip-bad-images: exit" 0 $?
check "history.json lists them" 2 "$(/usr/bin/python3 -c "
import json; print(len(json.load(open('$out/m3/history.json'))['data']['bad_images']))")"

# 5. Folders that are no dataset.
mkdir -p "$out/one/cats" && cp "$one" "$out/one/cats/"
"$train" --data-dir "$out/one" "${common[@]}" > "$out/run9.txt" 2>&1
check "one class: exit" 3 $?
check "one class: message" 1 "$(has_text "$out/run9.txt" "holds one class folder (cats) only")"
"$train" --data-dir "$out/png" "${common[@]}" --labels 0-4 > "$out/run10.txt" 2>&1
check "--labels on a folder: exit" 2 $?

[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
